package main

import (
	"fmt"
	"slices"
	"strings"
)

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pick returns f of every row of server.
func pick(rows []result, server string, f func(result) float64) []float64 {
	var out []float64
	for _, r := range rows {
		if r.Server == server {
			out = append(out, f(r))
		}
	}
	return out
}

// group is the rows of one layout and load, in the order they ran.
type group struct {
	layout, rate string
	rows         []result
}

func groups(all []result) []group {
	var out []group
	for _, r := range all {
		if n := len(out); n > 0 && out[n-1].layout == r.Layout && out[n-1].rate == r.Rate {
			out[n-1].rows = append(out[n-1].rows, r)
			continue
		}
		out = append(out, group{layout: r.Layout, rate: r.Rate, rows: []result{r}})
	}
	return out
}

func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	lo, hi := slices.Min(v), slices.Max(v)
	m := fmt.Sprintf(format, median(v))
	if len(v) == 1 {
		return m
	}
	return fmt.Sprintf("%s ("+format+"-"+format+")", m, lo, hi)
}

// loadLabel describes a group's load: "max" or the offered sends/s.
func loadLabel(g group) string {
	if g.rate == "max" {
		return "max"
	}
	return fmt.Sprintf("%s: %.0f sends/s", g.rate, g.rows[0].OfferedPerS)
}

// report renders the medians per server and, when both servers ran, the
// ratios, as Markdown tables.
func report(o options, all []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nxchat: %d pair(s) per row, %v window after %v warm-up, %d in flight per sender at max, %d-byte messages; medians (min-max)\n\n",
		o.pairs, o.duration, o.warmup, o.inflight, o.size)
	b.WriteString("| layout | load | server | µs server CPU / delivery | deliveries/s | sends/s | p50 ms | p99 ms | server cores | generator cores | lost | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	gs := groups(all)
	for _, g := range gs {
		for _, name := range o.servers {
			f := func(fn func(result) float64) []float64 { return pick(g.rows, name, fn) }
			var lost, errs int64
			for _, r := range g.rows {
				if r.Server == name {
					lost += r.Lost
					errs += r.Errors
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n",
				g.layout, loadLabel(g), name,
				spread(f(func(r result) float64 { return r.CPUPerDelivery }), "%.2f"),
				spread(f(func(r result) float64 { return r.DeliveriesPerS }), "%.0f"),
				spread(f(func(r result) float64 { return r.SendsPerS }), "%.0f"),
				spread(f(func(r result) float64 { return r.P50Ms }), "%.2f"),
				spread(f(func(r result) float64 { return r.P99Ms }), "%.1f"),
				spread(f(func(r result) float64 { return r.ServerCores }), "%.2f"),
				spread(f(func(r result) float64 { return r.GenCores }), "%.2f"),
				lost, errs)
		}
	}
	if len(o.servers) < 2 {
		return b.String()
	}
	a, c := o.servers[0], o.servers[1]
	fmt.Fprintf(&b, "\n| layout | load | %s µs/delivery | %s µs/delivery | ratio %s/%s | per-pair ratios | %s p99 ms | %s p99 ms |\n", a, c, a, c, a, c)
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, g := range gs {
		cpu := func(name string) []float64 {
			return pick(g.rows, name, func(r result) float64 { return r.CPUPerDelivery })
		}
		ca, cc := cpu(a), cpu(c)
		var pairs []string
		for i := range min(len(ca), len(cc)) {
			if cc[i] > 0 {
				pairs = append(pairs, fmt.Sprintf("%.2f", ca[i]/cc[i]))
			}
		}
		ratio := "-"
		if m := median(cc); m > 0 {
			ratio = fmt.Sprintf("**%.2f**", median(ca)/m)
		}
		p99 := func(name string) float64 {
			return median(pick(g.rows, name, func(r result) float64 { return r.P99Ms }))
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %s | %s | %.1f | %.1f |\n",
			g.layout, loadLabel(g), median(ca), median(cc), ratio, strings.Join(pairs, ", "), p99(a), p99(c))
	}
	return b.String()
}
