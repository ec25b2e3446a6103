package chatmux

import (
	"fmt"
	"strings"
)

// The event-pattern tree. A pattern is a dotted name whose segments are
// static text, a parameter "{name}" (exactly one segment) or, as the last
// segment only, the wildcard "*" (one or more segments). Matching prefers a
// static segment over a parameter over the wildcard and backtracks when the
// preferred branch fails further down.

// maxEventLen bounds the event names the router looks at.
const maxEventLen = 256

type endpoint struct {
	pattern string
	handler Handler
	// keys names the captured values in order; the wildcard is "*".
	keys []string
	// hidden marks the internal routes of mounted routers.
	hidden bool
}

type node struct {
	static   map[string]*node
	param    *node
	wildcard *endpoint
	ep       *endpoint
}

type tree struct {
	root node
	// exact holds the patterns without parameters or wildcard: most
	// events resolve with one map lookup.
	exact map[string]*endpoint
	// shapes detects duplicates that differ only in parameter names.
	shapes map[string]string
	all    []*endpoint
}

func newTree() *tree {
	return &tree{exact: map[string]*endpoint{}, shapes: map[string]string{}}
}

// parsePattern splits a pattern into segments and returns its parameter
// names and its shape (parameters written as {}). It panics on a malformed
// pattern.
func parsePattern(pattern string) (segs, keys []string, shape string) {
	if pattern == "" {
		panic("chatmux: empty event pattern")
	}
	segs = strings.Split(pattern, ".")
	shapeSegs := make([]string, len(segs))
	seen := map[string]bool{}
	for i, s := range segs {
		switch {
		case s == "":
			panic(fmt.Sprintf("chatmux: event pattern %q has an empty segment", pattern))
		case s == "*":
			if i != len(segs)-1 {
				panic(fmt.Sprintf("chatmux: event pattern %q: the wildcard '*' must be the last segment", pattern))
			}
			keys = append(keys, "*")
		case s[0] == '{':
			if s[len(s)-1] != '}' || len(s) < 3 {
				panic(fmt.Sprintf("chatmux: event pattern %q: malformed parameter segment %q", pattern, s))
			}
			name := s[1 : len(s)-1]
			if strings.ContainsAny(name, "{}*") {
				panic(fmt.Sprintf("chatmux: event pattern %q: malformed parameter segment %q", pattern, s))
			}
			if seen[name] {
				panic(fmt.Sprintf("chatmux: event pattern %q: duplicate parameter %q", pattern, name))
			}
			seen[name] = true
			keys = append(keys, name)
			s = "{}"
		case strings.ContainsAny(s, "{}*"):
			panic(fmt.Sprintf("chatmux: event pattern %q: segment %q mixes text with '{', '}' or '*'", pattern, s))
		}
		shapeSegs[i] = s
	}
	return segs, keys, strings.Join(shapeSegs, ".")
}

// insert adds a route. It panics on a malformed or duplicate pattern.
func (t *tree) insert(pattern string, h Handler) *endpoint {
	segs, keys, shape := parsePattern(pattern)
	if prev, ok := t.shapes[shape]; ok {
		panic(fmt.Sprintf("chatmux: event pattern %q is already registered (as %q)", pattern, prev))
	}
	t.shapes[shape] = pattern
	ep := &endpoint{pattern: pattern, handler: h, keys: keys}
	t.all = append(t.all, ep)
	if len(keys) == 0 {
		t.exact[pattern] = ep
	}
	n := &t.root
	for i, s := range segs {
		switch {
		case s == "*":
			n.wildcard = ep
			return ep
		case s[0] == '{':
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			if n.static == nil {
				n.static = map[string]*node{}
			}
			child := n.static[s]
			if child == nil {
				child = &node{}
				n.static[s] = child
			}
			n = child
		}
		if i == len(segs)-1 {
			n.ep = ep
		}
	}
	return ep
}

// validEvent reports whether name is a dotted name the router can match:
// non-empty segments, at most maxEventLen bytes.
func validEvent(name string) bool {
	if name == "" || len(name) > maxEventLen {
		return false
	}
	prev := byte('.')
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '.' && prev == '.' {
			return false
		}
		prev = c
	}
	return prev != '.'
}

// match finds the endpoint for an event name, appending captured values to
// vals. It returns nil when nothing matches.
func (t *tree) match(name string, vals []string) (*endpoint, []string) {
	if ep := t.exact[name]; ep != nil {
		return ep, vals
	}
	if !validEvent(name) {
		return nil, vals
	}
	return t.root.match(name, vals)
}

func (n *node) match(path string, vals []string) (*endpoint, []string) {
	seg, rest, more := strings.Cut(path, ".")
	if child := n.static[seg]; child != nil {
		if !more {
			if child.ep != nil {
				return child.ep, vals
			}
		} else if ep, v := child.match(rest, vals); ep != nil {
			return ep, v
		}
	}
	if n.param != nil {
		v := append(vals, seg)
		if !more {
			if n.param.ep != nil {
				return n.param.ep, v
			}
		} else if ep, v := n.param.match(rest, v); ep != nil {
			return ep, v
		}
	}
	if n.wildcard != nil {
		return n.wildcard, append(vals, path)
	}
	return nil, vals
}
