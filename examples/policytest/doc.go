// Package policytest shows how to test a tool policy with plain go test:
// case files run by scopetest with rule coverage, the policy type-checked
// and linted against the tools' schemas, and a recorded decision log
// replayed against a policy change. Run it with
//
//	go test ./examples/policytest
//
// and see policy_test.go.
package policytest
