// Package memory is the in-memory implementation of store.Store: the
// embedded default of chatmux, for development, tests and single-node
// deployments that need no database.
//
// All data lives in maps behind one sync.RWMutex; every operation is
// atomic, and the behaviour (invariants, errors, orderings) is the one of
// store/postgres, checked by the shared conformance suite in
// store/storetest. Data is lost when the process exits.
//
//	st := memory.New()
//	svc := chat.New(chat.Config{Store: st})
package memory
