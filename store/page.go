package store

// MessagePage is one page of MessagesPage.
type MessagePage struct {
	// Messages, newest first.
	Messages []MessageView
	// Page is the effective page (1-based), Size the page size (0: all).
	Page int
	Size int
	// Total is the number of visible messages, Pages the number of pages
	// (at least 1).
	Total       int
	Pages       int
	HasNext     bool
	HasPrevious bool
}

// Paginate computes the page that MessagesPage returns for total visible
// messages, the requested page and size, with the paginator semantics of
// docs/protocol.md#pagination and docs/protocol.md#diff-pagination: a page below 1 or past the last page gives the
// last page, the result carries the effective page, and an empty room still
// has one (empty) page. size 0 means one page with everything. Messages is
// left nil for the caller to fill; Bounds gives the slice to load.
func Paginate(total, page, size int) MessagePage {
	p := MessagePage{Size: size, Total: total, Page: 1, Pages: 1}
	if size <= 0 {
		p.Size = 0
		return p
	}
	p.Pages = (total + size - 1) / size
	if p.Pages < 1 {
		p.Pages = 1
	}
	p.Page = page
	if page < 1 || page > p.Pages {
		p.Page = p.Pages
	}
	p.HasNext = p.Page < p.Pages
	p.HasPrevious = p.Page > 1
	return p
}

// Bounds returns the offsets [lo, hi) of the page within the visible
// messages ordered newest first.
func (p MessagePage) Bounds() (lo, hi int) {
	if p.Size <= 0 {
		return 0, p.Total
	}
	lo = (p.Page - 1) * p.Size
	hi = min(lo+p.Size, p.Total)
	return min(lo, hi), hi
}

// NextPage returns the next page number, 0 when there is none.
func (p MessagePage) NextPage() int {
	if p.HasNext {
		return p.Page + 1
	}
	return 0
}

// PreviousPage returns the previous page number, 0 when there is none.
func (p MessagePage) PreviousPage() int {
	if p.HasPrevious {
		return p.Page - 1
	}
	return 0
}
