package main

import (
	"fmt"
	"math"
	"strings"
)

// toolSizes are the tool counts of scope's BenchmarkDecideTools.
var toolSizes = []int{10, 1000, 10000, 100000}

// ruleSizes are the rule counts of the rule-scaling benchmarks.
var ruleSizes = []int{10, 100, 1000}

// scaleTargets are the targets on 100,000 tools, registration, rules and
// mcpguard's overhead over stdio.
func scaleTargets(res map[string]*results) ([]target, error) {
	for _, name := range []string{"scale", "tools", "register", "stdio"} {
		if res[name] == nil {
			return nil, fmt.Errorf("no %s results", name)
		}
	}
	var ts []target
	tools := res["tools"]
	for _, names := range []string{"literal", "glob"} {
		for _, call := range []struct{ name, about string }{{"last", "the same tool"}, {"cycle", "every tool in turn"}} {
			base := tools.median(fmt.Sprintf("DecideTools/names=%s/tools=10/call=%s", names, call.name), "sec/op")
			var got []string
			met := !math.IsNaN(base)
			for _, n := range toolSizes[1:] {
				v := tools.median(fmt.Sprintf("DecideTools/names=%s/tools=%d/call=%s", names, n, call.name), "sec/op")
				got = append(got, ratio(v, base))
				met = met && v/base <= 1.3
			}
			ts = append(ts, target{fmt.Sprintf("Decision at 1,000 / 10,000 / 100,000 tools vs 10 (%s names, %s)", names, call.about),
				"≤ 1.3×", strings.Join(got, " / "), met})
		}
	}
	ts = append(ts, memoryFloor(tools))
	lit := tools.median("DecideTools/names=literal/tools=100000/call=last", "heap-B") / (1 << 20)
	glb := tools.median("DecideTools/names=glob/tools=100000/call=last", "heap-B") / (1 << 20)
	ts = append(ts, target{"Heap of a compiled policy of 100,000 tools with every plan built (literal / glob)", "reported",
		fmt.Sprintf("%.0f MiB / %.0f MiB", lit, glb), !math.IsNaN(lit) && !math.IsNaN(glb)})

	reg := res["register"]
	for _, c := range []struct {
		n     int
		limit float64
	}{{10000, 1}, {100000, 10}} {
		for _, schemas := range []string{"shared", "distinct", "shapes"} {
			name := fmt.Sprintf("Register/schemas=%s/tools=%d", schemas, c.n)
			wall := reg.median(name, "sec/op")
			cpu := reg.median(name, "cpu-sec/op")
			ts = append(ts, target{fmt.Sprintf("Register %d tools, %s schemas (CPU time; wall time)", c.n, schemas),
				fmt.Sprintf("< %g s", c.limit), fmt.Sprintf("%.2f s; %.2f s", cpu, wall), cpu < c.limit})
		}
	}

	scale := res["scale"]
	for _, fam := range []struct{ bench, about string }{{"ScaleRulesKeyed", "exact-path"}, {"ScaleRules", "substring"}} {
		for _, k := range ruleSizes {
			name := func(e string) string { return fmt.Sprintf("%s/rules=%d/engine=%s", fam.bench, k, e) }
			ag := scale.median(name("agentguard"), "sec/op")
			cedar := scale.median(name("cedar"), "sec/op")
			opa := scale.median(name("opa"), "sec/op")
			ts = append(ts, target{fmt.Sprintf("%d %s deny rules on the tool: vs cedar-go; vs OPA", k, fam.about),
				"≥ 3×; ≥ 30×", fmt.Sprintf("%s; %s", ratio(cedar, ag), ratio(opa, ag)), cedar/ag >= 3 && opa/ag >= 30})
		}
	}

	for _, r := range stdioRows(res["stdio"]) {
		ts = append(ts, target{fmt.Sprintf("mcpguard over stdio, p50 overhead (%s; an fsync here: %s back to back, %s after idling; a pipe round trip to a process after idling: %s)", r.Mode, r.Fsync, r.FsyncIdle, r.PipeIdle),
			"≤ 0.3 ms", r.P50Over, r.p50Over <= 0.3})
		if r.Mode == "-sync each (default)" {
			floor := r.fsyncIdle + r.pipeIdle
			ts = append(ts, target{"mcpguard over stdio, the floor under the default mode's p50 overhead on this machine: an fsync after idling plus a pipe round trip after idling, with no work of the proxy's own",
				"reported", fmt.Sprintf("%.3f ms", floor), !math.IsNaN(floor)})
		}
	}
	return ts, nil
}

// memoryFloor is what the machine's memory alone adds to a decision at n
// tools called in turn: the 10-tool decision plus the growth of "floor" (a
// map lookup of the name and a read of one line of the tool's own data,
// each waiting for the last) from 10 to n tools, over the 10-tool decision.
func memoryFloor(tools *results) target {
	dec := tools.median("DecideTools/names=literal/tools=10/call=cycle", "sec/op")
	base := tools.median("DecideTools/names=literal/tools=10/call=floor", "sec/op")
	var got []string
	ok := !math.IsNaN(dec) && !math.IsNaN(base)
	for _, n := range toolSizes[1:] {
		v := tools.median(fmt.Sprintf("DecideTools/names=literal/tools=%d/call=floor", n), "sec/op")
		ok = ok && !math.IsNaN(v)
		got = append(got, ratio(dec+v-base, dec))
	}
	return target{"Floor under \"every tool in turn\": the 10-tool decision plus what a name lookup and one line of the tool's own data add from 10 to 1,000 / 10,000 / 100,000 tools (call=floor; no decision)",
		"reported", strings.Join(got, " / "), ok}
}

// stdioRow is one mode of mcpguard's stdio benchmark, in milliseconds.
type stdioRow struct {
	Mode                                string
	P50Direct, P50Guard, P50Over        string
	P99Direct, P99Guard, P99Over, Fsync string
	FsyncIdle, PipeIdle                 string
	p50Over, fsyncIdle, pipeIdle        float64
}

func stdioRows(rs *results) []stdioRow {
	if rs == nil {
		return nil
	}
	ms := func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return fmt.Sprintf("%.3f ms", v)
	}
	var rows []stdioRow
	for _, mode := range []struct{ name, about string }{
		{"each", "-sync each (default)"}, {"each-sync-outcomes", "-sync each -sync-outcomes"}, {"none", "-sync none"},
	} {
		get := func(unit string) float64 { return rs.median("StdioOverhead/"+mode.name, unit) }
		rows = append(rows, stdioRow{
			Mode:      mode.about,
			P50Direct: ms(get("p50-direct-ms")), P50Guard: ms(get("p50-guard-ms")), P50Over: ms(get("p50-overhead-ms")),
			P99Direct: ms(get("p99-direct-ms")), P99Guard: ms(get("p99-guard-ms")), P99Over: ms(get("p99-overhead-ms")),
			Fsync:     ms(get("p50-fsync-ms")),
			FsyncIdle: ms(get("p50-fsync-idle-ms")),
			PipeIdle:  ms(get("p50-pipe-rtt-idle-ms")),
			p50Over:   get("p50-overhead-ms"),
			fsyncIdle: get("p50-fsync-idle-ms"),
			pipeIdle:  get("p50-pipe-rtt-idle-ms"),
		})
	}
	return rows
}

// hasSession reports whether the session benchmarks ran.
func hasSession(rs *results) bool {
	if rs == nil {
		return false
	}
	for name := range rs.vals {
		if strings.HasPrefix(name, "Session") {
			return true
		}
	}
	return false
}
