package policytest

import (
	"context"
	"fmt"

	"github.com/agentguard/agentguard/toolguard"
)

// Arguments of the support desk's tools; their JSON Schemas are derived
// from these types.
type (
	TicketArgs struct {
		ID string `json:"id"`
	}
	SearchArgs struct {
		Query  string   `json:"query"`
		Fields []string `json:"fields,omitempty"`
	}
	CommentArgs struct {
		ID   string `json:"id"`
		Body string `json:"body"`
	}
	RefundArgs struct {
		Ticket      string `json:"ticket"`
		AmountCents int    `json:"amount_cents"`
	}
)

// RegisterTools registers the support desk's tools on g. The handlers only
// describe what they would do.
func RegisterTools(g *toolguard.Guard) error {
	for _, err := range []error{
		toolguard.Register(g, "get_ticket", "Read a ticket.", func(_ context.Context, in TicketArgs) (string, error) {
			return "ticket " + in.ID, nil
		}),
		toolguard.Register(g, "search_tickets", "Search tickets.", func(_ context.Context, in SearchArgs) (string, error) {
			return "results for " + in.Query, nil
		}),
		toolguard.Register(g, "comment_ticket", "Comment on a ticket.", func(_ context.Context, in CommentArgs) (string, error) {
			return "commented on " + in.ID, nil
		}),
		toolguard.Register(g, "close_ticket", "Close a ticket.", func(_ context.Context, in TicketArgs) (string, error) {
			return "closed " + in.ID, nil
		}),
		toolguard.Register(g, "issue_refund", "Refund a customer.", func(_ context.Context, in RefundArgs) (string, error) {
			return fmt.Sprintf("refunded %d cents on %s", in.AmountCents, in.Ticket), nil
		}),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
