package sessionstoretest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/sessionstoretest"
)

// The suite passes on a store written from the contract.
func TestRunOnReferenceStore(t *testing.T) {
	sessionstoretest.Run(t, func(*testing.T) toolguard.SessionStore { return newRefStore("") })
}

// One store shared by every subtest passes too: subtests keep to their own
// principals.
func TestRunOnSharedStore(t *testing.T) {
	s := newRefStore("")
	sessionstoretest.Run(t, func(*testing.T) toolguard.SessionStore { return s })
}

// TestBrokenStore is not a test: TestSuiteCatchesBugs runs it in a child
// process on a store with one bug, and expects the suite to fail it.
func TestBrokenStore(t *testing.T) {
	bug := os.Getenv("SESSIONSTORETEST_BUG")
	if bug == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBugs")
	}
	sessionstoretest.Run(t, func(*testing.T) toolguard.SessionStore { return newRefStore(bug) })
}

// Each bug makes the subtest named for it fail.
func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	for bug, subtest := range map[string]string{
		"ignore-principal":        "Isolation",
		"joined-key":              "HostileIDs",
		"forgets-full":            "CallsBound",
		"unbounded":               "CallsBound",
		"shared-state":            "AppendAssignsSeq",
		"unsorted-labels":         "LabelsSorted",
		"any-label":               "LookupByLabel",
		"case-folded":             "LookupByLabel",
		"racy-seq":                "ConcurrentAppendSeq",
		"latest-origin":           "EarliestOrigin",
		"count-repeats":           "TokensCount",
		"remember-key-only":       "RememberScoped",
		"reserve-ignores-running": "ReserveBound",
		"release-ignored":         "ReserveBound",
	} {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "SESSIONSTORETEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %s", bug)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenStore/"+subtest+" ") {
				t.Fatalf("bug %s: subtest %s did not fail:\n%s", bug, subtest, out)
			}
		})
	}
}
