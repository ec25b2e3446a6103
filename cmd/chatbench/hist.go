package main

import (
	"math"
	"math/bits"
	"time"
)

// histSub is the number of sub-buckets per power of two: values are kept
// with a relative error below 1/histSub (about 3%).
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// hist is a log-linear histogram of durations in nanoseconds. It is not
// safe for concurrent use: each goroutine records into its own and the
// results are merged.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	max    int64
}

func histIndex(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1
	return (e+1)*histSub + int(uint64(v)>>uint(e)) - histSub
}

// histValue returns the upper bound of bucket i.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return ((m + 1) << uint(e)) - 1
}

func (h *hist) record(d int64) {
	h.counts[histIndex(d)]++
	h.n++
	h.sum += float64(d)
	if d > h.max {
		h.max = d
	}
}

func (h *hist) merge(o *hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0..1), at most the maximum.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// latencySummary is the JSON form of a histogram.
type latencySummary struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (h *hist) summary() latencySummary {
	return latencySummary{
		Count:  h.n,
		MeanMS: ms(h.mean()),
		P50MS:  ms(h.quantile(0.50)),
		P90MS:  ms(h.quantile(0.90)),
		P99MS:  ms(h.quantile(0.99)),
		MaxMS:  ms(time.Duration(h.max)),
	}
}
