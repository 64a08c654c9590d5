package apiserver

import (
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/store"
)

// toStatus turns any error into the Kubernetes Status the client sees. This
// is the one place where store error classes become HTTP codes.
func toStatus(err error, gr schema.GroupResource, name string) *apierrors.StatusError {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, store.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, store.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(conflictMsg))
	case errors.Is(err, store.ErrExpired):
		return apierrors.NewResourceExpired(expiredMessage(err))
	case errors.Is(err, store.ErrTooLarge):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, store.ErrInvalidContinue):
		return apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
	}
	return apierrors.NewInternalError(err)
}

const conflictMsg = "the object has been modified; please apply your changes to the latest version and try again"

func expiredMessage(err error) string {
	var se *store.Error
	if errors.As(err, &se) && se.Msg != "" {
		return se.Msg
	}
	return "too old resource version"
}

func statusFor(err error) *metav1.Status {
	s := toStatus(err, schema.GroupResource{}, "").ErrStatus
	return &s
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}

func notFoundPath() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseTypeUnexpectedServerResponse, Message: "404 page not found"}}},
	}}
}
