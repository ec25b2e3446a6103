// Package groups fans messages out to named groups of connections: a room,
// all devices of a user.
//
// A Broker delivers a published Message to every Member of a group. The
// in-process broker (NewMemory) serves one node; a distributed broker (such
// as the Redis one) forwards publications between nodes and hands them to
// its node's local members through a Hub, the sharded local index of
// members that every broker shares. A broker that can lose contact with the
// other nodes implements Availability: it reports when messages from them
// may be missed, and when it is back with every subscription confirmed.
//
// Messages are of two kinds: data (an encoded frame that every member
// queues as is: one encoding for any number of recipients) and control
// (join or leave another group, or close). Control messages published to a
// user's group move all of that user's connections, on every node, in or
// out of a room's group, or close them (a user deleted for good).
package groups
