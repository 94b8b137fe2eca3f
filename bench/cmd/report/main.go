// Command report turns `go test -bench -benchmem` output into the markdown
// table of BENCHMARKS.md: for each pair (ours vs a peer, serial and
// parallel) the medians of ns/op, B/op and allocs/op, the overhead above the
// pair's bare base, the ratio ours/peer, and whether the targets
// are met.
//
//	go run ./cmd/report -in bench.txt -out BENCHMARKS.md -command '...' -machine '...' -go '...'
//
// Benchmark names follow the bench module's convention:
// BenchmarkGroup[/sub...]/impl[-parallel][-GOMAXPROCS]; "resilient" is ours,
// every other impl of the group is a peer. It is self-contained (no
// benchstat): medians over the -count samples.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ours is the impl name of our side of every pair.
const ours = "resilient"

// bases names, per group, the benchmark whose ns/op every member of the
// group includes; overhead = ns/op - base ns/op. Groups absent here measure
// the policy alone: their overhead is their ns/op.
var bases = map[string]string{
	"BenchmarkClientStack":       "BenchmarkBase/roundtrip",
	"BenchmarkRetry":             "BenchmarkBase/roundtrip",
	"BenchmarkServerStack":       "BenchmarkServerBase/handler",
	"BenchmarkTimeoutMiddleware": "BenchmarkServerBase/handler",
	"BenchmarkLoopback":          "BenchmarkLoopback/bare",
}

// target is one of the targets.
type target struct {
	Group, Peer string
	Text        string
	// Check reports whether ours meets the target against peer.
	Check func(o, p row) bool
}

var targets = []target{
	{"BenchmarkClientStack", "failsafe", "full client stack: overhead ≤ ½ failsafe-go's, allocs ≤ ⅓ of its allocs",
		func(o, p row) bool { return o.ovhNs <= p.ovhNs/2 && o.allocs <= p.allocs/3 }},
	{"BenchmarkRetry", "retryablehttp", "retry layer: overhead ≤ go-retryablehttp's",
		func(o, p row) bool { return o.ovhNs <= p.ovhNs }},
	{"BenchmarkBreaker", "gobreaker", "breaker closed path: ≤ gobreaker, 0 allocs",
		func(o, p row) bool { return o.ns <= p.ns && o.allocs == 0 }},
	{"BenchmarkKeyedLimiter/keys=100000", "golimiter", "keyed limiter, 100,000 keys: ≤ go-limiter, 0 allocs",
		func(o, p row) bool { return o.ns <= p.ns && o.allocs == 0 }},
	{"BenchmarkServerStack", "chi", "full server stack: overhead ≤ chi Throttle + Timeout + httprate",
		func(o, p row) bool { return o.ovhNs <= p.ovhNs }},
	{"BenchmarkTimeoutMiddleware", "stdlib", "timeout middleware: overhead ≤ ½ http.TimeoutHandler's",
		func(o, p row) bool { return o.ovhNs <= p.ovhNs/2 }},
}

// sample is the metrics of one benchmark line, by unit.
type sample map[string]float64

// bench is every sample of one benchmark name, in the order met.
type bench struct {
	name    string
	samples []sample
}

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parse reads go test -bench output: benchmark lines, and the goos/goarch/
// cpu/pkg header lines.
func parse(r io.Reader) (map[string]*bench, []string, map[string]string, error) {
	byName := map[string]*bench{}
	var order []string
	header := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, k := range []string{"goos", "goarch", "cpu", "pkg"} {
			if v, ok := strings.CutPrefix(line, k+": "); ok {
				header[k] = v
			}
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		s := sample{}
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			s[fields[i+1]] = v
		}
		if _, ok := s["ns/op"]; !ok {
			continue
		}
		b := byName[m[1]]
		if b == nil {
			b = &bench{name: m[1]}
			byName[m[1]] = b
			order = append(order, m[1])
		}
		b.samples = append(b.samples, s)
	}
	return byName, order, header, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	xs = slices.Clone(xs)
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// med is the median of unit over b's samples (NaN when absent).
func (b *bench) med(unit string) float64 {
	var xs []float64
	for _, s := range b.samples {
		if v, ok := s[unit]; ok {
			xs = append(xs, v)
		}
	}
	return median(xs)
}

// row is one implementation of one group in one mode, with its medians.
type row struct {
	ns, bytes, allocs float64
	ovhNs, ovhB       float64
	ovhAllocs         float64
	extra             map[string]float64 // other units (conns/op)
	n                 int                // samples
}

// split parses a benchmark name into group, impl and mode.
func split(name string) (group, impl, mode string) {
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return name, "", "serial"
	}
	group, impl, mode = name[:i], name[i+1:], "serial"
	if s, ok := strings.CutSuffix(impl, "-parallel"); ok {
		impl, mode = s, "parallel"
	}
	return group, impl, mode
}

func suffix(mode string) string {
	if mode == "parallel" {
		return "-parallel"
	}
	return ""
}

type report struct {
	byName map[string]*bench
	order  []string
}

// get returns the row of group/impl in mode, with overheads against the
// group's base.
func (r *report) get(group, impl, mode string) (row, bool) {
	b := r.byName[group+"/"+impl+suffix(mode)]
	if b == nil {
		return row{}, false
	}
	x := row{ns: b.med("ns/op"), bytes: b.med("B/op"), allocs: b.med("allocs/op"), n: len(b.samples), extra: map[string]float64{}}
	for _, s := range b.samples {
		for u := range s {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" && u != "MB/s" {
				x.extra[u] = b.med(u)
			}
		}
	}
	x.ovhNs, x.ovhB, x.ovhAllocs = x.ns, x.bytes, x.allocs
	if base, ok := bases[group]; ok {
		if bb := r.byName[base+suffix(mode)]; bb != nil {
			x.ovhNs -= bb.med("ns/op")
			x.ovhB -= bb.med("B/op")
			x.ovhAllocs -= bb.med("allocs/op")
		} else {
			x.ovhNs, x.ovhB, x.ovhAllocs = math.NaN(), math.NaN(), math.NaN()
		}
	}
	return x, true
}

// groupOrder is the order of the tables: the issue's, then the rest.
var groupOrder = []string{
	"BenchmarkClientStack", "BenchmarkRetry", "BenchmarkBreaker", "BenchmarkBreakerExecute",
	"BenchmarkLimiter", "BenchmarkKeyedLimiter", "BenchmarkServerStack", "BenchmarkTimeoutMiddleware",
	"BenchmarkLoopback",
}

func rank(group string) int {
	top, _, _ := strings.Cut(group, "/")
	if i := slices.Index(groupOrder, top); i >= 0 {
		return i
	}
	return len(groupOrder)
}

// groups lists the groups in groupOrder, else the order met, each with its
// impls in the order met.
func (r *report) groups() ([]string, map[string][]string) {
	var gs []string
	impls := map[string][]string{}
	for _, name := range r.order {
		g, impl, _ := split(name)
		if _, ok := impls[g]; !ok {
			gs = append(gs, g)
		}
		if !slices.Contains(impls[g], impl) {
			impls[g] = append(impls[g], impl)
		}
	}
	sort.SliceStable(gs, func(i, j int) bool { return rank(gs[i]) < rank(gs[j]) })
	return gs, impls
}

func f(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

func main() {
	in := flag.String("in", "-", "go test -bench output (- for stdin)")
	out := flag.String("out", "-", "markdown to write (- for stdout)")
	command := flag.String("command", "", "the exact command that produced the input")
	machine := flag.String("machine", "", "machine description (arch, CPU model, cores)")
	goVersion := flag.String("go", "", "Go version")
	flag.Parse()

	var r io.Reader = os.Stdin
	if *in != "-" {
		fh, err := os.Open(*in)
		if err != nil {
			fatal(err)
		}
		defer fh.Close()
		r = fh
	}
	byName, order, header, err := parse(r)
	if err != nil {
		fatal(err)
	}
	if len(order) == 0 {
		fatal(fmt.Errorf("no benchmark lines in %s", *in))
	}
	rep := &report{byName: byName, order: order}

	var sb strings.Builder
	write(&sb, rep, header, *command, *machine, *goVersion)
	if *out == "-" {
		fmt.Print(sb.String())
		return
	}
	if err := os.WriteFile(*out, []byte(sb.String()), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

func write(w *strings.Builder, rep *report, header map[string]string, command, machine, goVersion string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks: resilient vs its peers\n\n")
	p("Generated by `bench/run.sh` (`bench/cmd/report`); do not edit by hand.\n\n")
	p("- Machine: %s\n", orDash(machine))
	if c := header["cpu"]; c != "" {
		p("- CPU (as go test reports it): %s\n", c)
	}
	p("- Go: %s\n", orDash(goVersion))
	p("- Command: `%s`\n", orDash(command))
	samples := 0
	for _, b := range rep.byName {
		samples = max(samples, len(b.samples))
	}
	p("- Samples per benchmark: %d; every figure is the median.\n\n", samples)

	p("Every pair ran in the same process over the same in-memory base (no network), except Loopback (127.0.0.1).\n")
	p("**Overhead** = ns/op (and B/op, allocs/op) above the bare base of the group, medians of the same run:\n")
	p("client groups over `BenchmarkBase/roundtrip` (the in-memory RoundTripper, body read and closed), server groups\n")
	p("over `BenchmarkServerBase/handler` (the trivial handler on an httptest.ResponseRecorder), Loopback over\n")
	p("`BenchmarkLoopback/bare`; breaker and limiter groups measure the policy alone (overhead = ns/op).\n")
	p("**ours/peer** is the ratio of overheads (lower is better for us). Parallel rows use b.RunParallel (GOMAXPROCS goroutines).\n\n")

	p("## Targets\n\n")
	p("| target | mode | ours | peer | result |\n|---|---|---|---|---|\n")
	for _, t := range targets {
		for _, mode := range []string{"serial", "parallel"} {
			o, ok1 := rep.get(t.Group, ours, mode)
			pr, ok2 := rep.get(t.Group, t.Peer, mode)
			if !ok1 || !ok2 {
				p("| %s | %s | – | – | not measured |\n", t.Text, mode)
				continue
			}
			res := "**missed**"
			if t.Check(o, pr) {
				res = "met"
			}
			p("| %s | %s | %s ns over base, %s allocs (%s over base) | %s ns over base, %s allocs (%s over base) | %s (%s) |\n",
				t.Text, mode, f(o.ovhNs), f(o.allocs), f(o.ovhAllocs), f(pr.ovhNs), f(pr.allocs), f(pr.ovhAllocs), res, ratio(o.ovhNs, pr.ovhNs))
		}
	}
	p("\n")

	gs, impls := rep.groups()
	p("## Pairs\n\n")
	p("| benchmark | mode | peer | ours ns/op | peer ns/op | ours B/op | peer B/op | ours allocs/op | peer allocs/op | ours overhead ns | peer overhead ns | ours/peer |\n")
	p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, g := range gs {
		if !slices.Contains(impls[g], ours) {
			continue
		}
		for _, mode := range []string{"serial", "parallel"} {
			o, ok := rep.get(g, ours, mode)
			if !ok {
				continue
			}
			for _, peer := range impls[g] {
				if peer == ours {
					continue
				}
				pr, ok := rep.get(g, peer, mode)
				if !ok {
					continue
				}
				rt := ratio(o.ovhNs, pr.ovhNs)
				if bases[g] == g+"/"+peer {
					// The peer is the base itself: show our share of it.
					rt = fmt.Sprintf("%+.1f%% of bare", 100*o.ovhNs/pr.ns)
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					strings.TrimPrefix(g, "Benchmark"), mode, peer, f(o.ns), f(pr.ns), f(o.bytes), f(pr.bytes),
					f(o.allocs), f(pr.allocs), f(o.ovhNs), f(pr.ovhNs), rt)
			}
		}
	}
	p("\n")

	p("## Every benchmark (medians)\n\n")
	p("| benchmark | samples | ns/op | B/op | allocs/op | overhead ns | overhead B | overhead allocs | other |\n")
	p("|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, name := range rep.order {
		g, impl, mode := split(name)
		x, _ := rep.get(g, impl, mode)
		var other []string
		for _, u := range sortedKeys(x.extra) {
			other = append(other, strconv.FormatFloat(x.extra[u], 'g', 4, 64)+" "+u)
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(name, "Benchmark"), x.n,
			f(x.ns), f(x.bytes), f(x.allocs), f(x.ovhNs), f(x.ovhB), f(x.ovhAllocs), strings.Join(other, ", "))
	}
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
