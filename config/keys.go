package config

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Key types of sharded tables.
const (
	KeyInt  = "int"
	KeyText = "text"
	KeyUUID = "uuid"
)

// Key is a parsed shard-key value from the config (a range bound or a list
// value). Keys of one type compare the way Postgres orders them, except
// that text compares byte-wise (C collation) whatever the database collation.
type Key struct {
	Type string
	Int  int64
	Text string
	UUID [16]byte
}

// ParseKey parses s as a key of type typ (int, text or uuid).
func ParseKey(typ, s string) (Key, error) {
	switch typ {
	case KeyInt:
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return Key{}, fmt.Errorf("not a 64-bit integer")
		}
		return Key{Type: typ, Int: v}, nil
	case KeyText:
		return Key{Type: typ, Text: s}, nil
	case KeyUUID:
		u, err := parseUUID(s)
		if err != nil {
			return Key{}, err
		}
		return Key{Type: typ, UUID: u}, nil
	}
	return Key{}, fmt.Errorf("unknown key type %q", typ)
}

// parseUUID accepts what Postgres's uuid input accepts: 32 hex digits,
// optionally in braces, with hyphens between groups of four digits.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	h := strings.ReplaceAll(t, "-", "")
	if len(h) != 32 || strings.HasPrefix(t, "-") || strings.HasSuffix(t, "-") || strings.Contains(t, "--") {
		return u, fmt.Errorf("not a UUID")
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("not a UUID")
	}
	return u, nil
}

// Compare orders two keys of the same type: -1, 0 or +1.
func (k Key) Compare(o Key) int {
	switch k.Type {
	case KeyInt:
		return cmp.Compare(k.Int, o.Int)
	case KeyUUID:
		return bytes.Compare(k.UUID[:], o.UUID[:])
	}
	return strings.Compare(k.Text, o.Text)
}

// String is the canonical text of the key ("007" → "7", UUIDs lower-case
// with hyphens), so equal keys have equal strings.
func (k Key) String() string {
	switch k.Type {
	case KeyInt:
		return strconv.FormatInt(k.Int, 10)
	case KeyUUID:
		h := hex.EncodeToString(k.UUID[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	return k.Text
}
