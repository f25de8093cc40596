package aibom_test

import (
	"context"
	"fmt"
	"log"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/aibom"
)

// The BOM of an in-process guard: the application, its model, the policy
// and the tools the agent can reach.
func ExampleNew() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  weather.read:
    grants:
      - tools: [get_forecast]
`))
	if err != nil {
		log.Fatal(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		log.Fatal(err)
	}
	type city struct {
		City string `json:"city"`
	}
	forecast := func(ctx context.Context, in city) (string, error) { return "sunny in " + in.City, nil }
	if err := toolguard.Register(g, "get_forecast", "Weather forecast for a city", forecast); err != nil {
		log.Fatal(err)
	}
	if err := toolguard.Register(g, "set_thermostat", "Not granted by any scope", forecast); err != nil {
		log.Fatal(err)
	}

	bom, err := aibom.New(aibom.Inventory{
		Application: aibom.Application{Name: "weather-agent", Version: "1.0.0"},
		Guard:       g,
		Models: []aibom.Model{{Name: "example-llm", Version: "2026-01", Provider: "Example AI",
			Task: "text-generation", TechnicalLimitations: []string{"may follow instructions found in tool results"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range *bom.Components {
		fmt.Println("component:", c.Type, c.BOMRef)
	}
	for _, s := range *bom.Services {
		for _, pr := range *s.Properties {
			if pr.Name == "agentguard:tool:reachable" {
				fmt.Println("tool:", s.Name, "reachable:", pr.Value)
			}
		}
	}
	for _, d := range *bom.Dependencies {
		if d.Dependencies != nil {
			fmt.Println(d.Ref, "->", *d.Dependencies)
		}
	}
	// aibom.WriteFile("agent.cdx.json", bom) writes it as CycloneDX 1.6 JSON.

	// Output:
	// component: library agentguard
	// component: data policy
	// component: machine-learning-model model:example-llm@2026-01
	// tool: get_forecast reachable: true
	// tool: set_thermostat reachable: false
	// application:weather-agent -> [agentguard model:example-llm@2026-01]
	// agentguard -> [policy tool:get_forecast]
}
