package scheduler

import (
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
)

// Image locality, as kube-scheduler's ImageLocality scores it: a node that
// already has the pod's images scores higher, by their size, discounted by
// how few nodes have them (so that pods do not all crowd onto the one node
// that pulled an image first).
const (
	imageMinThreshold = 23 << 20   // smaller images count as nothing
	imageMaxThreshold = 1000 << 20 // per container, what counts as a full score
)

// imageIndex is, by normalised image name, how many nodes have it and its
// size; rebuilt when nodes change (s.mu held).
type imageIndex struct {
	dirty bool
	nodes int
	have  map[string]int
	size  map[string]int64
}

func normalizeImage(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

func (s *Scheduler) imagesOf(nodes []*corev1.Node) *imageIndex {
	if !s.images.dirty && s.images.nodes == len(nodes) && s.images.have != nil {
		return &s.images
	}
	idx := imageIndex{nodes: len(nodes), have: map[string]int{}, size: map[string]int64{}}
	for _, n := range nodes {
		seen := map[string]bool{}
		for _, img := range n.Status.Images {
			for _, nm := range img.Names {
				k := normalizeImage(nm)
				if !seen[k] {
					seen[k] = true
					idx.have[k]++
					idx.size[k] = img.SizeBytes
				}
			}
		}
	}
	s.images = idx
	return &s.images
}

// imageScore is 0–100 for node.
func imageScore(pod *corev1.Pod, node *corev1.Node, idx *imageIndex) float64 {
	if idx.nodes == 0 || len(idx.have) == 0 {
		return 0
	}
	onNode := map[string]bool{}
	for _, img := range node.Status.Images {
		for _, nm := range img.Names {
			onNode[normalizeImage(nm)] = true
		}
	}
	var sum float64
	containers := 0
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		containers++
		k := normalizeImage(c.Image)
		if onNode[k] {
			sum += float64(idx.size[k]) * float64(idx.have[k]) / float64(idx.nodes)
		}
	}
	maxT := float64(imageMaxThreshold * containers)
	switch {
	case sum < imageMinThreshold:
		return 0
	case sum > maxT:
		return 100
	}
	return (sum - imageMinThreshold) / (maxT - imageMinThreshold) * 100
}
