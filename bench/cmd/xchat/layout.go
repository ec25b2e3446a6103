package main

import (
	"fmt"
	"strconv"
	"strings"
)

// layout is one scenario shape: rooms × members, senders.
type layout struct {
	Rooms, Members, Senders int
}

// String writes the layout the way parseLayout reads it.
func (l layout) String() string { return fmt.Sprintf("%dx%dx%d", l.Rooms, l.Members, l.Senders) }

// Title is the layout in words, for the report.
func (l layout) Title() string {
	return fmt.Sprintf("%d room%s × %d members, %d sender%s", l.Rooms, plural(l.Rooms), l.Members, l.Senders, plural(l.Senders))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Users is the number of connections of the layout.
func (l layout) Users() int { return l.Rooms * l.Members }

// roomOf is the room of user u: users are dealt round-robin, so user u is
// in room u % Rooms, and users 0..Senders-1 are the senders (spread over
// the rooms the same way).
func (l layout) roomOf(u int) int { return u % l.Rooms }

// maxUsers bounds a layout's connections: the driver and the server each
// hold one file per connection, under the machine's open-file limit.
const maxUsers = 5000

// parseLayout reads "RxMxS": R rooms of M members, S senders.
func parseLayout(s string) (layout, error) {
	parts := strings.Split(strings.TrimSpace(s), "x")
	if len(parts) != 3 {
		return layout{}, fmt.Errorf("invalid layout %q: want ROOMSxMEMBERSxSENDERS, such as 1x100x10", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return layout{}, fmt.Errorf("invalid layout %q: %q is not a positive integer", s, p)
		}
		v[i] = n
	}
	l := layout{Rooms: v[0], Members: v[1], Senders: v[2]}
	switch {
	case l.Members < 2:
		return layout{}, fmt.Errorf("invalid layout %q: a room needs at least 2 members for a delivery", s)
	case l.Senders > l.Users():
		return layout{}, fmt.Errorf("invalid layout %q: %d senders but only %d users", s, l.Senders, l.Users())
	case l.Users() > maxUsers:
		return layout{}, fmt.Errorf("invalid layout %q: %d connections, at most %d", s, l.Users(), maxUsers)
	}
	return l, nil
}

// parseLayouts reads a comma-separated list of layouts.
func parseLayouts(s string) ([]layout, error) {
	var out []layout
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		l, err := parseLayout(f)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no layout given")
	}
	return out, nil
}

// rateSpec is the offered load of a run: the maximum (every sender keeps
// its messages in flight), half of the lower of the two servers' maximum
// measured earlier in the same run, or a fixed number of sends per second
// over all senders.
type rateSpec struct {
	Max   bool
	Half  bool
	Fixed float64
}

// String writes the spec the way parseRates reads it.
func (r rateSpec) String() string {
	switch {
	case r.Max:
		return "max"
	case r.Half:
		return "half"
	}
	return strconv.FormatFloat(r.Fixed, 'f', -1, 64)
}

// parseRates reads a comma-separated list of "max", "half" or a positive
// number of sends per second. "half" needs "max" before it.
func parseRates(s string) ([]rateSpec, error) {
	var out []rateSpec
	sawMax := false
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "":
			continue
		case "max":
			sawMax = true
			out = append(out, rateSpec{Max: true})
		case "half":
			if !sawMax {
				return nil, fmt.Errorf("invalid rates %q: half needs max before it (half of the maximum measured in the same run)", s)
			}
			out = append(out, rateSpec{Half: true})
		default:
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || !(v > 0) || v > 1e7 {
				return nil, fmt.Errorf("invalid rate %q: want max, half or sends per second (a positive number)", f)
			}
			out = append(out, rateSpec{Fixed: v})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rate given")
	}
	return out, nil
}
