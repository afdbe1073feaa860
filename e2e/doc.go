// Package e2e holds Slipway's end-to-end tests. They run the real slipway
// binary with its embedded NATS and registry and a real buildkitd and runc,
// against a git http-backend server; nothing is faked.
package e2e
