package toolguard

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxShownArgs bounds the arguments shown by [ApprovalMessage].
const maxShownArgs = 4 << 10

// maxShownHidden bounds the hidden values listed by [ApprovalMessage].
const maxShownHidden = 20

// ApprovalMessage is a plain-text approval question for a human: the tool,
// the principal, the arguments as the guard gives them (canonical, with
// sensitive values and secrets redacted; long ones cut), what of them is
// hidden and why ([ApprovalRequest.Hidden]), and the reason of the rule
// that asks. The MCP approvers (guardmcp and guardsdk) show it by default.
func ApprovalMessage(req ApprovalRequest) string {
	args := string(req.Args)
	if args == "" {
		args = "{}"
	}
	if len(args) > maxShownArgs {
		args = TruncateUTF8(args, maxShownArgs) + fmt.Sprintf("… (%d bytes in all; SHA-256 %s)", len(req.Args), req.ArgsSHA256)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Approve this tool call?\n\nTool: %s\nCalled by: %s\nArguments: %s\n", req.Tool, req.Principal.ID, args)
	writeHidden(&b, req)
	if req.Reason != "" || req.Rule != "" {
		fmt.Fprintf(&b, "Why you are asked: %s", req.Reason)
		if req.Rule != "" {
			fmt.Fprintf(&b, " (rule %q)", req.Rule)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nYour answer covers this call only.")
	return b.String()
}

// writeHidden lists what of the arguments is hidden from the user, and why.
func writeHidden(b *strings.Builder, req ApprovalRequest) {
	if len(req.Hidden) == 0 {
		return
	}
	b.WriteString("Hidden from you (each shown as redacted:hmac-sha256:…, a digest):\n")
	for i, h := range req.Hidden {
		if i == maxShownHidden {
			fmt.Fprintf(b, "- and %d more\n", len(req.Hidden)-i)
			break
		}
		at := h.Pointer
		if at == "" {
			at = "(all arguments)" // the empty pointer
		}
		what := "the whole value"
		if !h.Whole {
			what = "part of the text; the rest is shown"
		}
		fmt.Fprintf(b, "- %q: %s, because %s\n", TruncateUTF8(at, 200), what, h.Why)
	}
}

// TruncateUTF8 returns at most the first n bytes of s, cut back to a whole
// UTF-8 character.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
