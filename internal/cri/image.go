package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/image"
)

// imageID is an image's id as CRI reports it: its config's digest.
func imageID(img *image.Image) string { return img.Config.String() }

// findImage resolves a reference, an image id or a unique prefix of one.
func (s *Service) findImage(ref string) (*image.Image, *image.Config, error) {
	if id, ok := asImageID(ref); ok {
		all, err := s.cfg.Images.List()
		if err != nil {
			return nil, nil, err
		}
		for _, img := range all {
			if strings.HasPrefix(img.Config.Hex, id) {
				return s.cfg.Images.Inspect(img.Ref)
			}
		}
		return nil, nil, fmt.Errorf("image %q: %w", ref, errNotFound)
	}
	img, cfg, err := s.cfg.Images.Inspect(ref)
	if errors.Is(err, image.ErrNotFound) {
		return nil, nil, fmt.Errorf("image %q: %w", ref, errNotFound)
	}
	return img, cfg, err
}

// asImageID reports whether ref is an image id ("sha256:<hex>" or enough
// hex to be one) and returns its hex.
func asImageID(ref string) (string, bool) {
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < 12 || len(hex) > 64 {
		return "", false
	}
	for _, c := range hex {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return "", false
		}
	}
	return hex, hex != ref || len(hex) == 64
}

// criImages groups the store's references by image id.
func (s *Service) criImages() ([]*runtimeapi.Image, error) {
	all, err := s.cfg.Images.List()
	if err != nil {
		return nil, err
	}
	byID := map[string]*runtimeapi.Image{}
	var out []*runtimeapi.Image
	for _, img := range all {
		id := imageID(img)
		ci, ok := byID[id]
		if !ok {
			ci = &runtimeapi.Image{Id: id, Size: uint64(img.Size), Spec: &runtimeapi.ImageSpec{Image: id}}
			byID[id] = ci
			out = append(out, ci)
		}
		ci.RepoTags = append(ci.RepoTags, img.Ref)
		ci.RepoDigests = append(ci.RepoDigests, img.Repo+"@"+img.Digest.String())
	}
	return out, nil
}

// ListImages lists the stored images.
func (s *Service) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.criImages()
	if err != nil {
		return nil, err
	}
	if want := req.GetFilter().GetImage().GetImage(); want != "" {
		img, _, err := s.findImage(want)
		if err != nil {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		var keep []*runtimeapi.Image
		for _, ci := range imgs {
			if ci.Id == imageID(img) {
				keep = append(keep, ci)
			}
		}
		imgs = keep
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}

// ImageStatus describes one image; an unknown image is no error, only no
// image (the kubelet then pulls).
func (s *Service) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, cfg, err := s.findImage(req.GetImage().GetImage())
	if IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	imgs, err := s.criImages()
	if err != nil {
		return nil, err
	}
	for _, ci := range imgs {
		if ci.Id == imageID(img) {
			if uid, err := parseUID(cfg.User); err == nil {
				ci.Uid = &runtimeapi.Int64Value{Value: uid}
			} else if cfg.User != "" {
				ci.Username, _, _ = strings.Cut(cfg.User, ":")
			}
			return &runtimeapi.ImageStatusResponse{Image: ci}, nil
		}
	}
	return &runtimeapi.ImageStatusResponse{}, nil
}

func parseUID(user string) (int64, error) {
	name, _, _ := strings.Cut(user, ":")
	var uid int64
	_, err := fmt.Sscanf(name, "%d", &uid)
	if err == nil && fmt.Sprint(uid) != name {
		err = errors.New("not a number")
	}
	return uid, err
}

// PullImage pulls an image through the store (its registries.yaml and
// credentials apply).
func (s *Service) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	img, err := s.cfg.Images.Pull(ctx, req.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: imageID(img)}, nil
}

// RemoveImage removes every reference to an image.
func (s *Service) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	img, _, err := s.findImage(req.GetImage().GetImage())
	if IsNotFound(err) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if _, ok := asImageID(req.GetImage().GetImage()); !ok {
		return &runtimeapi.RemoveImageResponse{}, s.cfg.Images.Delete(img.Ref)
	}
	all, err := s.cfg.Images.List()
	if err != nil {
		return nil, err
	}
	for _, other := range all {
		if imageID(other) == imageID(img) {
			if err := s.cfg.Images.Delete(other.Ref); err != nil {
				return nil, err
			}
		}
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image store's use of its filesystem.
func (s *Service) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	var used uint64
	if imgs, err := s.criImages(); err == nil {
		for _, ci := range imgs {
			used += ci.Size
		}
	}
	fs := &runtimeapi.FilesystemUsage{Timestamp: time.Now().UnixNano(),
		FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.cfg.Images.Root()}, UsedBytes: &runtimeapi.UInt64Value{Value: used}}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{fs}}, nil
}
