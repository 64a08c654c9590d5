package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Serve serves the service on a unix socket at path until ctx ends, so
// that crictl can inspect the node.
func Serve(ctx context.Context, path string, s *Service) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	os.Remove(path) // left by an earlier run
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("cri socket: %w", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(grpcErrors))
	runtimeapi.RegisterRuntimeServiceServer(srv, s)
	runtimeapi.RegisterImageServiceServer(srv, s)
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	err = srv.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}

// grpcErrors gives errors the status codes CRI clients test for.
func grpcErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return resp, err
		}
		if IsNotFound(err) {
			return resp, status.Error(codes.NotFound, err.Error())
		}
		return resp, status.Error(codes.Unknown, err.Error())
	}
	return resp, nil
}
