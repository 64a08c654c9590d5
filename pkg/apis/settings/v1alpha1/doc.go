// Package v1alpha1 holds the PodPreset type of the settings.k8s.io group.
// Kubernetes removed PodPreset in 1.20; skiff keeps it with its historical
// schema so that manifests written for it keep working.
package v1alpha1
