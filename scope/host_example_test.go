package scope_test

import (
	"context"
	"fmt"

	"github.com/agentguard/agentguard/scope"
)

// A fetch tool may reach any public host; a deny rule keeps it away from
// internal ones however the URL spells them.
func ExampleURLHost_ssrf() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: args.url.startsWith("https://") || args.url.startsWith("http://")
rules:
  - name: no-internal-hosts
    effect: deny
    tools: [fetch]
    when: urlHost(args.url).isInternalHost()
    message: '"internal hosts are off limits: " + urlHost(args.url)'
`))
	if err != nil {
		panic(err)
	}
	pr := scope.Principal{ID: "bot", Scopes: []string{"web"}}
	for _, u := range []string{
		"https://example.com/a",
		"http://2130706433:8080/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://ｌｏｃａｌｈｏｓｔ/",
		"http://metadata.google.internal/",
		"www.example.com/a",
	} {
		d := p.Decide(context.Background(), scope.Input{
			Principal: pr,
			Tool:      scope.Tool{Name: "fetch"},
			Args:      map[string]any{"url": u},
		})
		fmt.Printf("%s: %s (%s)\n", u, d.Effect, d.Reason)
	}
	// Output:
	// https://example.com/a: allow (allowed by scope "web" (grant 0))
	// http://2130706433:8080/: deny (denied by rule "no-internal-hosts": internal hosts are off limits: 127.0.0.1)
	// http://[::ffff:169.254.169.254]/latest/meta-data/: deny (denied by rule "no-internal-hosts": internal hosts are off limits: 169.254.169.254)
	// http://ｌｏｃａｌｈｏｓｔ/: deny (denied by rule "no-internal-hosts": internal hosts are off limits: localhost)
	// http://metadata.google.internal/: deny (denied by rule "no-internal-hosts": internal hosts are off limits: metadata.google.internal)
	// www.example.com/a: deny (rule "no-internal-hosts" could not be evaluated, so the call is denied to be safe: urlHost: "www.example.com/a" is not an absolute URL: it has no scheme (write it as https://...))
}

func ExampleURLHost() {
	for _, u := range []string{"https://Example.COM./a", "http://0x7f.1/", "http://[::ffff:10.0.0.1]:8080/", "https://bücher.de/"} {
		h, err := scope.URLHost(u)
		fmt.Println(h, err)
	}
	// Output:
	// example.com <nil>
	// 127.0.0.1 <nil>
	// 10.0.0.1 <nil>
	// xn--bcher-kva.de <nil>
}
