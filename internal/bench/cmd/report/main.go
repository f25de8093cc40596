// Command report runs the benchmarks of internal/bench and writes
// BENCHMARKS.md at the repository root and the chart it shows.
//
// Run it from internal/bench:
//
//	go run ./cmd/report
//
// It runs go test -bench three times (the key benchmarks with -count 10,
// the parallel ones with -cpu 1,2, the scaling ones with fewer counts),
// keeps the raw output in results/, summarises it with benchstat and draws
// decision time against policy size with gonum.org/v1/plot. With -reuse it
// only re-renders from the saved results.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/agentguard/agentguard/internal/bench"
	"golang.org/x/perf/benchfmt"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// runs are the go test invocations, each saved to results/<name>.txt.
var runs = []struct {
	name  string
	args  []string
	about string
	dir   string // the package, relative to internal/bench; "" for internal/bench
}{
	{"key", []string{"-bench", "^Benchmark(Decision|DecisionJSON|Pipeline|PipelineVariants|Part)$", "-count", "10", "-benchtime", "300ms"},
		"decision, pipeline and parts: -count 10, -benchtime 300ms, GOMAXPROCS 2", ""},
	{"parallel", []string{"-bench", "^Benchmark(DecisionParallel|Pipeline)$/^(call=read-allowed|sink=discard)$/^(engine=.*|run=par)$", "-count", "6", "-benchtime", "300ms", "-cpu", "1,2"},
		"parallel runs: -count 6, -benchtime 300ms, -cpu 1,2", ""},
	{"scale", []string{"-bench", "^BenchmarkScale(Tools|Rules|RulesKeyed)$", "-count", "5", "-benchtime", "200ms"},
		"scaling: -count 5, -benchtime 200ms (fewer runs: the 10,000-policy cases are slow for cedar-go)", ""},
	{"tools", []string{"-bench", "^BenchmarkDecideTools$", "-count", "3", "-benchtime", "200ms"},
		"10 to 100,000 tools (scope): -count 3, -benchtime 200ms", "../../scope"},
	{"register", []string{"-bench", "^BenchmarkRegister$", "-count", "1", "-benchtime", "1x"},
		"registration (toolguard): one run of each size", "../../toolguard"},
	{"stdio", []string{"-bench", "^BenchmarkStdioOverhead$", "-count", "1", "-benchtime", "2000x"},
		"mcpguard over stdio (mcp): 2,000 calls each way per mode", "../../mcp"},
	{"session", []string{"-bench", "^BenchmarkSession", "-count", "10", "-benchtime", "300ms"},
		"session-aware decisions (toolguard): -count 10, -benchtime 300ms", "../../toolguard"},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("report: ")
	reuse := flag.Bool("reuse", false, "render from the saved results without running benchmarks")
	results := flag.String("results", "results", "directory of the raw benchmark output")
	out := flag.String("o", "../../BENCHMARKS.md", "the report to write")
	chart := flag.String("chart", "decision-vs-size.png", "the chart to write, beside the report's link to it")
	quick := flag.Bool("quick", false, "one short run of each benchmark, to try the report itself (not for publishing)")
	flag.Parse()
	if *quick {
		for i := range runs {
			runs[i].args = quickArgs(runs[i].args)
		}
	}
	if err := run(*reuse, *results, *out, *chart); err != nil {
		log.Fatal(err)
	}
}

// meta is what the report says about the run itself.
type meta struct {
	Started  string
	Took     string
	LoadPre  string
	LoadPost string
	CPU      string
	Go       string
	NumCPU   int
}

func run(reuse bool, dir, out, chart string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	metaFile := filepath.Join(dir, "meta.txt")
	if !reuse {
		m := meta{Started: time.Now().UTC().Format(time.RFC3339), LoadPre: loadavg(), Go: runtime.Version(), NumCPU: runtime.NumCPU()}
		start := time.Now()
		for _, r := range runs {
			log.Printf("go test %s", strings.Join(r.args, " "))
			if err := goTest(filepath.Join(dir, r.name+".txt"), r.dir, r.args); err != nil {
				return err
			}
		}
		m.Took = time.Since(start).Round(time.Second).String()
		m.LoadPost = loadavg()
		b := fmt.Appendf(nil, "started: %s\ntook: %s\nload-before: %s\nload-after: %s\ngo: %s\nnumcpu: %d\n",
			m.Started, m.Took, m.LoadPre, m.LoadPost, m.Go, m.NumCPU)
		if err := os.WriteFile(metaFile, b, 0o644); err != nil {
			return err
		}
	}
	m, err := readMeta(metaFile)
	if err != nil {
		return err
	}
	res := map[string]*results{}
	for _, r := range runs {
		rs, err := readResults(filepath.Join(dir, r.name+".txt"))
		if err != nil {
			return err
		}
		res[r.name] = rs
		if rs.cpu != "" {
			m.CPU = rs.cpu
		}
	}
	if err := drawChart(res["scale"], chart); err != nil {
		return err
	}
	doc, err := render(dir, m, res, chart)
	if err != nil {
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}

// quickArgs replaces -count and -benchtime by 1 and 20ms.
func quickArgs(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		switch out[i] {
		case "-count":
			out[i+1] = "1"
		case "-benchtime":
			out[i+1] = "20ms"
		}
	}
	return out
}

func goTest(file, dir string, args []string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("go", append([]string{"test", "-run", "^$", "-timeout", "60m"}, append(args, ".")...)...)
	cmd.Dir = dir
	cmd.Stdout = io.MultiWriter(f, os.Stdout)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test %s: %w", strings.Join(args, " "), err)
	}
	return f.Close()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readMeta(file string) (meta, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return meta{}, fmt.Errorf("%w (run without -reuse first)", err)
	}
	var m meta
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		switch k {
		case "started":
			m.Started = v
		case "took":
			m.Took = v
		case "load-before":
			m.LoadPre = v
		case "load-after":
			m.LoadPost = v
		case "go":
			m.Go = v
		case "numcpu":
			m.NumCPU, _ = strconv.Atoi(v)
		}
	}
	return m, nil
}

// results holds every measurement of one file by benchmark name (without
// the Benchmark prefix, with the -procs suffix) and unit.
type results struct {
	cpu  string
	vals map[string]map[string][]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

func readResults(file string) (*results, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w (run without -reuse first)", err)
	}
	defer f.Close()
	rs := &results{vals: map[string]map[string][]float64{}}
	r := benchfmt.NewReader(f, file)
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		if v := res.GetConfig("cpu"); v != "" {
			rs.cpu = v
		}
		name := string(res.Name)
		if rs.vals[name] == nil {
			rs.vals[name] = map[string][]float64{}
		}
		for _, v := range res.Values {
			rs.vals[name][v.Unit] = append(rs.vals[name][v.Unit], v.Value)
		}
	}
	return rs, r.Err()
}

// median returns the median of name's values in unit; name is matched with
// any -procs suffix when it has none.
func (rs *results) median(name, unit string) float64 {
	vs := rs.vals[name][unit]
	if vs == nil && !procsSuffix.MatchString(name) {
		for n, u := range rs.vals {
			if procsSuffix.ReplaceAllString(n, "") == name {
				vs = u[unit]
				break
			}
		}
	}
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var scaleEngines = []string{"agentguard", "opa", "cedar", "cedar-indexed"}

var scaleSizes = []int{10, 100, 1000, 10000}

func drawChart(rs *results, file string) error {
	p := plot.New()
	p.Title.Text = "Decision time vs policy size (allowed call, median)"
	p.X.Label.Text = "tools and scopes in the policy"
	p.Y.Label.Text = "time per decision (µs)"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for i, e := range scaleEngines {
		var pts plotter.XYs
		for _, n := range scaleSizes {
			v := rs.median(fmt.Sprintf("ScaleTools/tools=%d/engine=%s", n, e), "sec/op")
			if !math.IsNaN(v) {
				pts = append(pts, plotter.XY{X: float64(n), Y: v * 1e6})
			}
		}
		if len(pts) == 0 {
			return fmt.Errorf("no ScaleTools results for %s", e)
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2)
		if e == "cedar-indexed" {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Color = plotutil.Color(i)
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(e, line, points)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// benchstat runs benchstat on a results file.
func benchstat(args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("go", append([]string{"tool", "benchstat"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("benchstat %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	// The goos/goarch/pkg/cpu header is the same for every table; the
	// report states it once.
	var lines []string
	for line := range strings.Lines(out.String()) {
		if k, _, ok := strings.Cut(line, ": "); ok && slices.Contains([]string{"goos", "goarch", "pkg", "cpu"}, k) {
			continue
		}
		lines = append(lines, line)
	}
	return strings.TrimRight(strings.Join(lines, ""), "\n"), nil
}

type target struct {
	What, Want, Got string
	Met             bool
}

func render(dir string, m meta, res map[string]*results, chart string) ([]byte, error) {
	key, scale := res["key"], res["scale"]
	ns := func(rs *results, name string) float64 { return rs.median(name, "sec/op") * 1e9 }
	allocs := func(rs *results, name string) float64 { return rs.median(name, "allocs/op") }

	agAllow := ns(key, "Decision/call=read-allowed/engine=agentguard")
	opaAllow := ns(key, "Decision/call=read-allowed/engine=opa")
	cedarAllow := ns(key, "Decision/call=read-allowed/engine=cedar")
	agTable := ns(key, "Decision/call=table/engine=agentguard")
	opaTable := ns(key, "Decision/call=table/engine=opa")
	cedarTable := ns(key, "Decision/call=table/engine=cedar")
	pipe := ns(key, "Pipeline/sink=discard/run=seq")
	pipeAllocs := allocs(key, "Pipeline/sink=discard/run=seq")
	ag10 := ns(scale, "ScaleTools/tools=10/engine=agentguard")
	ag10k := ns(scale, "ScaleTools/tools=10000/engine=agentguard")
	own := map[string]float64{}
	var ownSum float64
	for _, p := range []struct {
		name  string
		times float64
	}{{"own-decode", 1}, {"own-canon-digest", 1}, {"own-schema", 1}, {"own-decide", 1}, {"own-limiter", 1}, {"own-record", 2}} {
		v := ns(key, "Part/part="+p.name)
		own[p.name] = v
		ownSum += p.times * v
	}
	var libSum float64
	for _, p := range []struct {
		name  string
		times float64
	}{{"lib-json-decode", 1}, {"lib-jsonschema-validate", 1}, {"lib-cel-eval", 1}, {"lib-rate-allow", 1}, {"lib-record-marshal", 2}} {
		libSum += p.times * ns(key, "Part/part="+p.name)
	}

	targets := []target{
		{"Decision vs OPA (allowed read)", "≥ 10×", ratio(opaAllow, agAllow), opaAllow/agAllow >= 10},
		{"Decision vs OPA (every call of the table in turn)", "≥ 10×", ratio(opaTable, agTable), opaTable/agTable >= 10},
		{"Decision vs cedar-go (allowed read)", "≥ 2×", ratio(cedarAllow, agAllow), cedarAllow/agAllow >= 2},
		{"Decision vs cedar-go (every call of the table in turn)", "≥ 2×", ratio(cedarTable, agTable), cedarTable/agTable >= 2},
		{"Full pipeline to io.Discard vs OPA's decision alone", "faster", fmt.Sprintf("%s vs %s", dur(pipe), dur(opaAllow)), pipe < opaAllow},
		{"Full pipeline to io.Discard, time", "≤ 3 µs", dur(pipe), pipe <= 3000},
		{"Full pipeline to io.Discard, allocations", "≤ 12", fmt.Sprintf("%.0f allocs/op", pipeAllocs), pipeAllocs <= 12},
		{"Decision at 10,000 tools vs 10 tools", "≤ 1.2×", ratio(ag10k, ag10), ag10k/ag10 <= 1.2},
		{"Full pipeline vs the sum of agentguard's own parts", "≤ 1.3×", fmt.Sprintf("%s (%s vs %s)", ratio(pipe, ownSum), dur(pipe), dur(ownSum)), pipe/ownSum <= 1.3},
	}

	more, err := scaleTargets(res)
	if err != nil {
		return nil, err
	}
	targets = append(targets, more...)

	var scaleRows []map[string]string
	for _, n := range scaleSizes {
		row := map[string]string{"n": fmt.Sprintf("%d", n)}
		for _, e := range scaleEngines {
			row[e] = dur(ns(scale, fmt.Sprintf("ScaleTools/tools=%d/engine=%s", n, e)))
		}
		scaleRows = append(scaleRows, row)
	}

	tables := map[string]string{}
	for name, args := range map[string][]string{
		"decision": {"-filter", ".name:Decision", "-col", "/engine", "-row", "/call", filepath.Join(dir, "key.txt")},
		"json":     {"-filter", ".name:DecisionJSON", "-col", "/engine", "-row", "/call", filepath.Join(dir, "key.txt")},
		"parallel": {"-filter", ".name:DecisionParallel", "-col", "/engine", "-row", "/gomaxprocs", filepath.Join(dir, "parallel.txt")},
		"parpipe":  {"-filter", ".name:Pipeline", "-col", ".name", "-row", "/gomaxprocs", filepath.Join(dir, "parallel.txt")},
		"variants": {"-filter", ".name:PipelineVariants", "-col", ".name", "-row", "/case", filepath.Join(dir, "key.txt")},
		"pipeline": {"-filter", ".name:Pipeline", "-col", "/run", "-row", "/sink", filepath.Join(dir, "key.txt")},
		"parts":    {"-filter", ".name:Part", "-col", ".name", "-row", "/part", filepath.Join(dir, "key.txt")},
		"tools":    {"-filter", ".name:ScaleTools", "-col", "/engine", "-row", "/tools", filepath.Join(dir, "scale.txt")},
		"rules":    {"-filter", ".name:ScaleRules", "-col", "/engine", "-row", "/rules", filepath.Join(dir, "scale.txt")},
		"keyed":    {"-filter", ".name:ScaleRulesKeyed", "-col", "/engine", "-row", "/rules", filepath.Join(dir, "scale.txt")},
		"many":     {"-filter", ".name:DecideTools", "-col", "/names", "-row", "/tools,/call", filepath.Join(dir, "tools.txt")},
		"register": {"-filter", ".name:Register", "-col", "/schemas", "-row", "/tools", filepath.Join(dir, "register.txt")},
	} {
		t, err := benchstat(args...)
		if err != nil {
			return nil, err
		}
		tables[name] = t
	}

	var about []string
	for _, r := range runs {
		about = append(about, r.about)
	}
	if hasSession(res["session"]) {
		t, err := benchstat("-filter", ".name:/^Session/", filepath.Join(dir, "session.txt"))
		if err != nil {
			return nil, err
		}
		tables["session"] = t
	}
	var buf bytes.Buffer
	err = reportTmpl.Execute(&buf, map[string]any{
		"Stdio": stdioRows(res["stdio"]), "Session": tables["session"] != "",
		"Meta": m, "Targets": targets, "Tables": tables, "Chart": "internal/bench/" + filepath.Base(chart),
		"Runs": about, "ScaleRows": scaleRows, "Engines": scaleEngines,
		"OwnSum": dur(ownSum), "LibSum": dur(libSum), "Pipe": dur(pipe), "LibRatio": ratio(pipe, libSum), "LibCheaper": pipe < libSum,
		"OwnDecide": dur(own["own-decide"]), "LibCEL": dur(ns(key, "Part/part=lib-cel-eval")),
		"Noisy": noisy(m), "NCalls": len(bench.Calls),
		"Rules100":              dur(ns(scale, "ScaleRules/rules=100/engine=agentguard")),
		"Rules100Allocs":        fmt.Sprintf("%.0f", allocs(scale, "ScaleRules/rules=100/engine=agentguard")),
		"Rules100NoLimit":       dur(ns(scale, "ScaleRules/rules=100/engine=agentguard-nocostlimit")),
		"Rules100NoLimitAllocs": fmt.Sprintf("%.0f", allocs(scale, "ScaleRules/rules=100/engine=agentguard-nocostlimit")),
		"OPARatio":              ratio(opaAllow, agAllow), "CedarRatio": ratio(cedarAllow, agAllow),
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// noisy reports whether other work competed for the CPUs during the run: a
// one-minute load average above half the CPUs before or after.
func noisy(m meta) bool {
	for _, l := range []string{m.LoadPre, m.LoadPost} {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil && v > float64(m.NumCPU)/2 {
			return true
		}
	}
	return false
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// dur formats nanoseconds.
func dur(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "n/a"
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"yesno": func(b bool) string {
		if b {
			return "met"
		}
		return "**not met**"
	},
}).Parse(reportText))
