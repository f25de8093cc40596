package main

import (
	"errors"
	"strings"

	"github.com/agentguard/agentguard/scope"
)

// policyOptions are the options every load of the policy file uses, at
// start, on each reload and with -update-lock: the size limit and the
// -functions functions.
func (c *config) policyOptions() []scope.Option {
	return append([]scope.Option{scope.WithMaxPolicyBytes(c.maxPolicy)}, functionOptions(c.functions)...)
}

// policyLoadError names the command's flag, not the Go option, in the
// error of a policy over the size limit.
func policyLoadError(err error) error {
	if msg := err.Error(); strings.Contains(msg, "WithMaxPolicyBytes") {
		return errors.New(strings.ReplaceAll(msg, "WithMaxPolicyBytes", "-max-policy-bytes"))
	}
	return err
}
