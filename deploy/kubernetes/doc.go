// Package kubernetes holds Slipway's Kubernetes manifests (a kustomization
// in this directory); it has no code, only the tests that render and check
// them.
package kubernetes
