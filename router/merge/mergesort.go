package merge

import (
	"container/heap"
	"fmt"
)

// cursor is one shard's current row in the k-way merge.
type cursor struct {
	src   Source
	shard int
	cells [][]byte
	keys  []value
}

// cursorHeap orders cursors by their current row's sort keys; ties go to
// the lower shard, so equal rows keep a stable order.
type cursorHeap struct {
	keys []sortKey
	cs   []*cursor
}

func (h *cursorHeap) Len() int { return len(h.cs) }
func (h *cursorHeap) Less(i, j int) bool {
	if c := cmpKeys(h.keys, h.cs[i].keys, h.cs[j].keys); c != 0 {
		return c < 0
	}
	return h.cs[i].shard < h.cs[j].shard
}
func (h *cursorHeap) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *cursorHeap) Push(x any)    { h.cs = append(h.cs, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	c := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return c
}

// cmpKeys compares two rows' sort-key values under ORDER BY semantics
// (direction, NULLS FIRST/LAST).
func cmpKeys(keys []sortKey, a, b []value) int {
	for i, k := range keys {
		x, y := a[i], b[i]
		var c int
		switch {
		case x.null && y.null:
			continue
		case x.null || y.null:
			c = 1 // the NULL one goes first iff nullsFirst, whatever the direction
			if x.null == k.nullsFirst {
				c = -1
			}
			return c
		default:
			c = compare(x, y)
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// runMergeSort merges shard streams that each arrive sorted by the ORDER BY
// keys (ShardSQL keeps the ORDER BY), holding one row per shard.
func (p *Plan) runMergeSort(cols []column, src []Source, out *sink) error {
	keys := make([]sortKey, len(p.sort))
	for i, k := range p.sort {
		if k.col < 0 {
			k.col = len(cols) - p.hidden - k.col - 1
		}
		if k.col >= len(cols) {
			return fmt.Errorf("merge: ORDER BY column %d of %d", k.col+1, len(cols))
		}
		keys[i] = k
	}
	for _, k := range keys {
		if err := cols[k.col].checkComparable("ORDER BY"); err != nil {
			return err
		}
	}
	h := &cursorHeap{keys: keys}
	for i, s := range src {
		c := &cursor{src: s, shard: i, keys: make([]value, len(keys))}
		ok, err := advance(c, cols, keys)
		if err != nil {
			return err
		}
		if ok {
			h.cs = append(h.cs, c)
		}
	}
	heap.Init(h)
	visible := len(cols) - p.hidden
	for h.Len() > 0 && !out.full() {
		c := h.cs[0]
		vis := c.cells[:visible]
		if err := out.push(vis, func() ([]byte, error) { return out.rowKey(vis) }); err != nil {
			return err
		}
		ok, err := advance(c, cols, keys)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

// advance reads c's next row and decodes its sort keys.
func advance(c *cursor, cols []column, keys []sortKey) (bool, error) {
	cells, ok, err := nextRow(c.src, len(cols), c.cells)
	if err != nil || !ok {
		return false, err
	}
	c.cells = cells
	for i, k := range keys {
		if c.keys[i], err = decode(cols[k.col], cells[k.col]); err != nil {
			return false, err
		}
	}
	return true, nil
}
