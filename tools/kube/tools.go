//go:build tools

// Package tools records the Kubernetes commands built by ../build-kube.sh so
// that `go mod tidy` keeps their dependencies in go.sum. It is never compiled
// into anything: the build tag keeps it out of normal builds.
//
// kube-scheduler and the scheduler_perf harness are optional peers built only
// on request (build-kube.sh kube-scheduler scheduler-perf); the harness import
// keeps the dependencies of its test binary (test/integration/scheduler_perf/misc)
// in go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/test/integration/scheduler_perf"
)
