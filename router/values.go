package router

import (
	"encoding/binary"
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router/sharding"
)

const codeProtocolViolation = pgwire.ProtocolViolation

func keyFromText(t *shardedTable, text []byte) (sharding.Key, error) {
	return sharding.KeyFromText(t.typ, text)
}

// lookupText resolves a key given as text through t's sharding function
// (for a directory table: a directory lookup).
func lookupText(t *shardedTable, text []byte) (ShardSet, error) {
	k, err := keyFromText(t, text)
	if err != nil {
		return 0, err
	}
	s, err := t.fn.Shard(k)
	if err != nil {
		return 0, err
	}
	return Only(s), nil
}

// valSet returns the shard of one key value for table t.
func (r *Router) valSet(v *valSrc, t *shardedTable, args *Args) (ShardSet, error) {
	if v.param < 0 {
		if v.lazy {
			return lookupText(t, v.text)
		}
		return v.set, v.err
	}
	if v.array {
		raw, binaryFmt, _, err := paramOf(v, args)
		if err != nil {
			return 0, err
		}
		return r.arraySet(t, raw, binaryFmt)
	}
	k, err := paramKey(v, t, args)
	if err != nil {
		return 0, err
	}
	s, err := t.fn.Shard(k)
	if err != nil {
		return 0, err
	}
	return Only(s), nil
}

// paramFormat applies Bind's rule: no codes = text, one code = for all.
func paramFormat(formats []int16, i int) int16 {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

// arraySet maps every element of an array parameter (= ANY($n)).
func (r *Router) arraySet(t *shardedTable, raw []byte, binaryFmt bool) (ShardSet, error) {
	if raw == nil {
		return 0, nil // key = ANY(NULL) matches no row
	}
	var set ShardSet
	add := func(k sharding.Key, err error) error {
		if err != nil {
			return err
		}
		s, err := t.fn.Shard(k)
		if err == nil {
			set |= Only(s)
		}
		return err
	}
	if !binaryFmt {
		elems, ok := parseArrayText(raw)
		if !ok {
			return 0, pgError(pgwire.InvalidTextRepresentation, "malformed array literal for shard key parameter", "")
		}
		for _, e := range elems {
			if err := add(sharding.KeyFromText(t.typ, e)); err != nil {
				return 0, err
			}
		}
		return set, nil
	}
	err := eachBinaryElem(raw, func(oid uint32, e []byte) error {
		return add(sharding.KeyFromBinary(t.typ, oid, e))
	})
	return set, err
}

// eachBinaryElem walks a one-dimensional binary array (array_send format).
func eachBinaryElem(b []byte, f func(oid uint32, e []byte) error) error {
	bad := pgError(pgwire.InvalidBinaryRepresentation, "malformed binary array for shard key parameter", "")
	if len(b) < 12 {
		return bad
	}
	ndim := int32(binary.BigEndian.Uint32(b))
	oid := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if ndim == 0 {
		return nil
	}
	if ndim != 1 || len(b) < 8 {
		return bad
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	b = b[8:]
	for ; n > 0; n-- {
		if len(b) < 4 {
			return bad
		}
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		var e []byte
		if l >= 0 {
			if int(l) > len(b) {
				return bad
			}
			e, b = b[:l:l], b[l:]
		}
		if err := f(oid, e); err != nil {
			return err
		}
	}
	return nil
}

// parseArrayText splits a one-dimensional array literal {a,"b c",NULL}.
// NULL elements are nil. Nested arrays are refused.
func parseArrayText(s []byte) ([][]byte, bool) {
	i := 0
	skip := func() {
		for i < len(s) && isSpaceByte(s[i]) {
			i++
		}
	}
	skip()
	if i >= len(s) || s[i] != '{' {
		return nil, false
	}
	i++
	var out [][]byte
	skip()
	if i < len(s) && s[i] == '}' {
		i++
		skip()
		return out, i == len(s)
	}
	for {
		skip()
		if i >= len(s) {
			return nil, false
		}
		switch s[i] {
		case '{':
			return nil, false
		case '"':
			var e []byte
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				e = append(e, s[i])
				i++
			}
			if i >= len(s) {
				return nil, false
			}
			i++
			if e == nil {
				e = []byte{}
			}
			out = append(out, e)
		default:
			j := i
			for j < len(s) && s[j] != ',' && s[j] != '}' {
				j++
			}
			e := trimSpaceBytes(s[i:j])
			if len(e) == 4 && (e[0]|0x20) == 'n' && (e[1]|0x20) == 'u' && (e[2]|0x20) == 'l' && (e[3]|0x20) == 'l' {
				e = nil
			}
			out = append(out, e)
			i = j
		}
		skip()
		if i >= len(s) {
			return nil, false
		}
		if s[i] == '}' {
			i++
			skip()
			return out, i == len(s)
		}
		if s[i] != ',' {
			return nil, false
		}
		i++
	}
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && isSpaceByte(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpaceByte(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// paramOf is the Bind value of parameter v: its bytes, format and type.
func paramOf(v *valSrc, args *Args) (raw []byte, binaryFmt bool, oid uint32, err error) {
	i := int(v.param)
	if args == nil || i >= len(args.Params) {
		return nil, false, 0, pgError(codeProtocolViolation, fmt.Sprintf("no value for parameter $%d", i+1), "")
	}
	oid = v.oid
	if i < len(args.ParamOIDs) && args.ParamOIDs[i] != 0 {
		oid = args.ParamOIDs[i]
	}
	return args.Params[i], paramFormat(args.Formats, i) == 1, oid, nil
}

// paramKey decodes the (non-array) key parameter v.
func paramKey(v *valSrc, t *shardedTable, args *Args) (sharding.Key, error) {
	raw, binaryFmt, oid, err := paramOf(v, args)
	if err != nil {
		return sharding.Key{}, err
	}
	var k sharding.Key
	if binaryFmt {
		k, err = sharding.KeyFromBinary(t.typ, oid, raw)
	} else {
		k, err = sharding.KeyFromText(t.typ, raw)
	}
	if err != nil {
		return k, err
	}
	if v.neg {
		if t.typ != sharding.TypeInt || k.Null {
			return k, pgError(codeInvalidParameter, "unary minus on a non-integer shard key", "")
		}
		k.Int = -k.Int
	}
	return k, nil
}

// eachKey calls f with every key v stands for: a constant, a parameter, or
// each element of an array parameter.
func (r *Router) eachKey(v *valSrc, t *shardedTable, args *Args, f func(sharding.Key)) error {
	switch {
	case v.param < 0 && v.null:
		f(sharding.Key{Null: true})
		return nil
	case v.param < 0:
		k, err := keyFromText(t, v.text)
		if err == nil {
			f(k)
		}
		return err
	case !v.array:
		k, err := paramKey(v, t, args)
		if err == nil {
			f(k)
		}
		return err
	}
	raw, binaryFmt, _, err := paramOf(v, args)
	if err != nil || raw == nil {
		return err
	}
	if !binaryFmt {
		elems, ok := parseArrayText(raw)
		if !ok {
			return pgError("22P02", "malformed array literal for shard key parameter", "")
		}
		for _, e := range elems {
			k, err := sharding.KeyFromText(t.typ, e)
			if err != nil {
				return err
			}
			f(k)
		}
		return nil
	}
	return eachBinaryElem(raw, func(oid uint32, e []byte) error {
		k, err := sharding.KeyFromBinary(t.typ, oid, e)
		if err == nil {
			f(k)
		}
		return err
	})
}
