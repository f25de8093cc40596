package sessionstoretest_test

import (
	"testing"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/sessionstoretest"
)

// The guard's default store keeps the contract, with bounds in the
// suite's ranges.
func TestRunOnMemorySessions(t *testing.T) {
	sessionstoretest.Run(t, func(*testing.T) toolguard.SessionStore {
		return toolguard.NewMemorySessions(toolguard.MemorySessionOptions{MaxSessions: 1000, MaxCalls: 1000, MaxLabels: 32, MaxTokens: 4096})
	})
}
