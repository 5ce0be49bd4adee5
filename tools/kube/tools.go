//go:build tools

// Package tools records the Kubernetes commands built by ../build-kube.sh so
// that `go mod tidy` keeps their dependencies in go.sum. It is never compiled
// into anything: the build tag keeps it out of normal builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
