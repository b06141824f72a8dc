package sharding

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// maxMoveModulus bounds the common modulus of two hash placements (the
// least common multiple of their largest moduli) that PlanMoves walks.
const maxMoveModulus = 1 << 20

// PartitionHashSQL is an SQL expression (numeric, 0 ≤ v < 2^64) equal to
// PartitionHash of column col (already quoted) of key type t, as Postgres
// computes it for PARTITION BY HASH: the type's extended hash with
// HASH_PARTITION_SEED, plus hash_combine64's constant, modulo 2^64, read
// unsigned. Text hashes under the C collation: its bytes, as the router does.
func PartitionHashSQL(t Type, col string) string {
	var h string
	switch t {
	case TypeInt:
		h = fmt.Sprintf("hashint8extended(%s::int8, %d)", col, int64(hashPartitionSeed))
	case TypeText:
		h = fmt.Sprintf(`hashtextextended(%s::text COLLATE "C", %d)`, col, int64(hashPartitionSeed))
	default:
		h = fmt.Sprintf("uuid_hash_extended(%s::uuid, %d)", col, int64(hashPartitionSeed))
	}
	return fmt.Sprintf("((%s)::numeric + 18446744073709551616 + %d) %% 18446744073709551616", h, hashCombineConst)
}

// hash groups the residues of the common modulus by (old shard, new shard).
func (p *movePlan) hash(old, next *config.Config) error {
	oo, err := hashOwners(old.HashSlots())
	if err != nil {
		return fmt.Errorf("old placement: %w", err)
	}
	no, err := hashOwners(next.HashSlots())
	if err != nil {
		return fmt.Errorf("next placement: %w", err)
	}
	mo, mn := len(oo), len(no)
	l := mo / gcd(mo, mn) * mn
	if l > maxMoveModulus {
		return fmt.Errorf("the old and next hash moduli (%d, %d) have no common multiple up to %d: use moduli that divide each other", mo, mn, maxMoveModulus)
	}
	residues := map[[2]int][]string{}
	var order [][2]int
	for r := 0; r < l; r++ {
		o, n := int(oo[r%mo]), int(no[r%mn])
		if n < 0 {
			return fmt.Errorf("next placement leaves remainder %d of modulus %d without a shard", r%mn, mn)
		}
		if o < 0 || p.from.names[o] == p.to.names[n] {
			continue
		}
		k := [2]int{o, n}
		if residues[k] == nil {
			order = append(order, k)
		}
		residues[k] = append(residues[k], strconv.Itoa(r))
	}
	expr := "(" + PartitionHashSQL(p.typ, p.col) + ") % " + strconv.Itoa(l)
	for _, k := range order {
		rs := residues[k]
		cond := expr + " = " + rs[0]
		if len(rs) > 1 {
			cond = expr + " IN (" + strings.Join(rs, ", ") + ")"
		}
		p.add(p.from.names[k[0]], p.to.names[k[1]], cond)
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ranges cuts the key space at every bound of both configs; on each piece
// both placements are constant, so its first key tells where it moves.
func (p *movePlan) ranges(ot, nt *config.ShardedTable) error {
	var bounds []Key
	for _, rs := range [][]config.RangeBound{ot.Ranges, nt.Ranges} {
		for _, r := range rs {
			for _, s := range []*string{r.From, r.To} {
				if s == nil {
					continue
				}
				k, err := parseBound(p.typ, *s)
				if err != nil {
					return err
				}
				bounds = append(bounds, k)
			}
		}
	}
	sort.Slice(bounds, func(i, j int) bool { return compareKeys(p.typ, bounds[i], bounds[j]) < 0 })
	bounds = uniqKeys(p.typ, bounds)
	// pieces: (-∞, b0), [b0, b1), …, [bn, +∞); lo nil = open.
	var cur *pieceRun
	for i := -1; i < len(bounds); i++ {
		var lo, hi *Key
		rep, ok := Key{}, true
		if i >= 0 {
			lo, rep = &bounds[i], bounds[i]
		} else if len(bounds) > 0 {
			rep, ok = below(p.typ, bounds[0])
		} else if p.typ == TypeUUID {
			rep = Key{Bytes: make([]byte, uuidLen)} // no bounds: any key shows the default
		}
		if i+1 < len(bounds) {
			hi = &bounds[i+1]
		}
		if !ok {
			continue
		}
		o, ook := p.from.shard(rep)
		n, nok := p.to.shard(rep)
		if ook && !nok {
			return fmt.Errorf("next placement leaves keys %s without a shard (add a range or a default)", p.rangeText(lo, hi))
		}
		if !ook || o == n {
			cur = p.flush(cur)
			continue
		}
		if cur != nil && cur.from == o && cur.to == n {
			cur.hi = hi
			continue
		}
		p.flush(cur)
		cur = &pieceRun{from: o, to: n, lo: lo, hi: hi}
	}
	p.flush(cur)
	return nil
}

// pieceRun is consecutive pieces moving between the same two shards.
type pieceRun struct {
	from, to string
	lo, hi   *Key
}

func (p *movePlan) flush(r *pieceRun) *pieceRun {
	if r == nil {
		return nil
	}
	col := p.col
	if p.typ == TypeText {
		col += ` COLLATE "C"` // ranges compare bytewise, as the router does
	}
	var conds []string
	if r.lo != nil {
		conds = append(conds, col+" >= "+sqlLiteral(p.typ, *r.lo))
	}
	if r.hi != nil {
		conds = append(conds, col+" < "+sqlLiteral(p.typ, *r.hi))
	}
	if len(conds) == 0 {
		conds = append(conds, p.col+" IS NOT NULL")
	}
	p.add(r.from, r.to, strings.Join(conds, " AND "))
	return nil
}

func (p *movePlan) rangeText(lo, hi *Key) string {
	s := "[-∞"
	if lo != nil {
		s = "[" + KeyText(p.typ, *lo)
	}
	if hi != nil {
		return s + ", " + KeyText(p.typ, *hi) + ")"
	}
	return s + ", +∞)"
}

// below is some key smaller than k, if there is one.
func below(t Type, k Key) (Key, bool) {
	switch t {
	case TypeInt:
		return Key{Int: k.Int - 1}, k.Int > math.MinInt64
	case TypeText:
		return Key{Bytes: []byte{}}, len(k.Bytes) > 0
	}
	zero := make([]byte, uuidLen)
	return Key{Bytes: zero}, compareKeys(t, Key{Bytes: zero}, k) < 0
}

func uniqKeys(t Type, ks []Key) []Key {
	out := ks[:0]
	for i, k := range ks {
		if i == 0 || compareKeys(t, k, out[len(out)-1]) != 0 {
			out = append(out, k)
		}
	}
	return out
}

// lists moves each listed value whose shard changed, and the unlisted
// values when the default changed.
func (p *movePlan) lists(ot, nt *config.ShardedTable) error {
	type pr struct{ from, to string }
	vals := map[pr][]string{}
	var order []pr
	var all []string
	seen := map[string]bool{}
	for _, ls := range [][]config.ListEntry{ot.Lists, nt.Lists} {
		for _, l := range ls {
			for _, v := range l.Values {
				k, err := parseBound(p.typ, v)
				if err != nil {
					return err
				}
				lit := sqlLiteral(p.typ, k)
				if seen[lit] {
					continue
				}
				seen[lit] = true
				all = append(all, lit)
				o, ook := p.from.shard(k)
				n, nok := p.to.shard(k)
				if ook && !nok {
					return fmt.Errorf("next placement gives list value %q no shard", v)
				}
				if ook && o != n {
					if vals[pr{o, n}] == nil {
						order = append(order, pr{o, n})
					}
					vals[pr{o, n}] = append(vals[pr{o, n}], lit)
				}
			}
		}
	}
	for _, k := range order {
		p.add(k.from, k.to, p.col+" IN ("+strings.Join(vals[k], ", ")+")")
	}
	if ot.Default != "" && ot.Default != nt.Default {
		if nt.Default == "" {
			return errors.New("the next config drops default: unlisted values would have no shard")
		}
		cond := p.col + " IS NOT NULL"
		if len(all) > 0 {
			cond = p.col + " NOT IN (" + strings.Join(all, ", ") + ")"
		}
		p.add(ot.Default, nt.Default, cond)
	}
	return nil
}

// sqlLiteral writes a key as an SQL constant of its type.
func sqlLiteral(t Type, k Key) string {
	switch t {
	case TypeInt:
		return strconv.FormatInt(k.Int, 10)
	case TypeUUID:
		return "'" + KeyText(t, k) + "'::uuid"
	}
	s := strings.ReplaceAll(string(k.Bytes), "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
	}
	return "'" + s + "'"
}
