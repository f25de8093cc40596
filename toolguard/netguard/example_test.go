package netguard_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/agentguard/agentguard/toolguard/netguard"
)

// A tool handler fetches with a client whose connections to internal
// addresses are refused after name resolution.
func ExampleFilter_Transport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("request arrived")
	}))
	defer srv.Close()

	var f netguard.Filter // the zero Filter refuses every internal address
	client := &http.Client{Transport: f.Transport(nil)}
	_, err := client.Get(srv.URL) // 127.0.0.1
	fmt.Println(errors.Is(err, netguard.ErrRefused))
	// Output: true
}
