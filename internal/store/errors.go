package store

import (
	"strings"

	"errors"
	"fmt"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Error classes returned by the store. The API server maps each one to a
// Kubernetes Status; nothing else in the store speaks HTTP.
var (
	// ErrNotFound means no object is stored under the key.
	ErrNotFound = errors.New("not found")
	// ErrExists means an object is already stored under the key.
	ErrExists = errors.New("already exists")
	// ErrConflict means a precondition (resourceVersion or uid) failed.
	ErrConflict = errors.New("conflict")
	// ErrExpired means the requested revision was compacted away.
	ErrExpired = errors.New("resource version expired")
	// ErrTooLarge means the requested revision is newer than the store's.
	ErrTooLarge = errors.New("resource version too large")
	// ErrInvalidContinue means a continue token could not be decoded.
	ErrInvalidContinue = errors.New("invalid continue token")
)

// Error carries one of the error classes with the key it concerns.
type Error struct {
	Class error
	Key   string
	Msg   string
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("%s: %s: %s", e.Key, e.Class, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Class)
}

// Unwrap lets errors.Is match the class.
func (e *Error) Unwrap() error { return e.Class }

func newErr(class error, key, msg string) error {
	return &Error{Class: class, Key: key, Msg: msg}
}

func isCompactedErr(err error) bool {
	return err != nil && (errors.Is(err, rpctypes.ErrCompacted) || strings.Contains(err.Error(), "compacted"))
}
