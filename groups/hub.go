package groups

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

const hubShards = 64

// Hub is the local index of group members, sharded so that no single lock
// sits on the broadcast path. Delivery reads an immutable snapshot of a
// group's members and holds no lock while it calls them. It is safe for
// concurrent use; the zero value is not: use NewHub.
type Hub struct {
	seed   maphash.Seed
	shards [hubShards]shard
	// OnDeliver, when set, is called after each local delivery of a data
	// message with the number of members it reached. Set it before the
	// hub is used.
	OnDeliver func(group string, members int)
}

type shard struct {
	mu     sync.RWMutex
	groups map[string]*group
}

type group struct {
	members map[Member]struct{}
	snap    atomic.Pointer[[]Member]
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	h := &Hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].groups = map[string]*group{}
	}
	return h
}

func (h *Hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%hubShards]
}

// Join adds m to the group and reports whether it is the group's first
// local member (a distributed broker subscribes then). Joining twice
// changes nothing and reports false.
func (h *Hub) Join(name string, m Member) (first bool) {
	s := h.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil {
		g = &group{members: map[Member]struct{}{}}
		s.groups[name] = g
	}
	if _, ok := g.members[m]; ok {
		return false
	}
	g.members[m] = struct{}{}
	g.snap.Store(nil)
	return len(g.members) == 1
}

// Leave removes m from the group and reports whether the group has no local
// member left (a distributed broker unsubscribes then). Leaving a group one
// is not in reports false.
func (h *Hub) Leave(name string, m Member) (last bool) {
	s := h.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	if g == nil {
		return false
	}
	if _, ok := g.members[m]; !ok {
		return false
	}
	delete(g.members, m)
	g.snap.Store(nil)
	if len(g.members) == 0 {
		delete(s.groups, name)
		return true
	}
	return false
}

// members returns an immutable snapshot of the group's members.
func (h *Hub) members(name string) []Member {
	s := h.shard(name)
	s.mu.RLock()
	g := s.groups[name]
	if g == nil {
		s.mu.RUnlock()
		return nil
	}
	p := g.snap.Load()
	if p == nil {
		list := make([]Member, 0, len(g.members))
		for m := range g.members {
			list = append(list, m)
		}
		p = &list
		g.snap.Store(p)
	}
	s.mu.RUnlock()
	return *p
}

// Deliver hands m to every local member of the group and returns how many
// it reached.
func (h *Hub) Deliver(name string, m *Message) int {
	list := h.members(name)
	for _, mem := range list {
		mem.Deliver(m)
	}
	if h.OnDeliver != nil && m.Kind == KindData {
		h.OnDeliver(name, len(list))
	}
	return len(list)
}

// Len returns the number of local members of the group.
func (h *Hub) Len(name string) int {
	s := h.shard(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[name]; g != nil {
		return len(g.members)
	}
	return 0
}

// Groups returns the names of the groups that have local members.
func (h *Hub) Groups() []string {
	var out []string
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for name := range s.groups {
			out = append(out, name)
		}
		s.mu.RUnlock()
	}
	return out
}
