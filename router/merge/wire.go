package merge

import (
	"encoding/binary"
	"fmt"
)

// field is one column of a RowDescription.
type field struct {
	name     string
	tableOID uint32
	attnum   int16
	typeOID  uint32
	typlen   int16
	typmod   int32
	format   int16
}

// parseRowDesc decodes a RowDescription body (no type byte or length).
func parseRowDesc(b []byte) ([]field, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("merge: short RowDescription")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	out := make([]field, 0, n)
	for i := 0; i < n; i++ {
		end := -1
		for j, c := range b {
			if c == 0 {
				end = j
				break
			}
		}
		if end < 0 || len(b) < end+1+18 {
			return nil, fmt.Errorf("merge: malformed RowDescription field %d", i)
		}
		f := field{name: string(b[:end])}
		b = b[end+1:]
		f.tableOID = binary.BigEndian.Uint32(b)
		f.attnum = int16(binary.BigEndian.Uint16(b[4:]))
		f.typeOID = binary.BigEndian.Uint32(b[6:])
		f.typlen = int16(binary.BigEndian.Uint16(b[10:]))
		f.typmod = int32(binary.BigEndian.Uint32(b[12:]))
		f.format = int16(binary.BigEndian.Uint16(b[16:]))
		b = b[18:]
		out = append(out, f)
	}
	return out, nil
}

// encodeRowDesc is the inverse of parseRowDesc.
func encodeRowDesc(fs []field) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(fs)))
	for _, f := range fs {
		b = append(b, f.name...)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, f.tableOID)
		b = binary.BigEndian.AppendUint16(b, uint16(f.attnum))
		b = binary.BigEndian.AppendUint32(b, f.typeOID)
		b = binary.BigEndian.AppendUint16(b, uint16(f.typlen))
		b = binary.BigEndian.AppendUint32(b, uint32(f.typmod))
		b = binary.BigEndian.AppendUint16(b, uint16(f.format))
	}
	return b
}

// sameColumns reports whether two shards describe the same result columns.
// Table OIDs and attribute numbers may differ between shards (each shard
// has its own catalog), so only what shapes the values is compared.
func sameColumns(a, b []field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || a[i].typeOID != b[i].typeOID ||
			a[i].typlen != b[i].typlen || a[i].typmod != b[i].typmod {
			return false
		}
	}
	return true
}

// splitRow cuts a DataRow body into its cells (nil for NULL), reusing dst.
// The cells alias row.
func splitRow(row []byte, dst [][]byte) ([][]byte, error) {
	if len(row) < 2 {
		return nil, fmt.Errorf("merge: short DataRow")
	}
	n := int(binary.BigEndian.Uint16(row))
	row = row[2:]
	dst = dst[:0]
	for i := 0; i < n; i++ {
		if len(row) < 4 {
			return nil, fmt.Errorf("merge: malformed DataRow column %d", i)
		}
		l := int32(binary.BigEndian.Uint32(row))
		row = row[4:]
		if l < 0 {
			dst = append(dst, nil)
			continue
		}
		if int(l) > len(row) {
			return nil, fmt.Errorf("merge: malformed DataRow column %d", i)
		}
		dst = append(dst, row[:l:l])
		row = row[l:]
	}
	return dst, nil
}

// appendRow encodes cells as a DataRow body. A nil cell is NULL; an empty
// non-nil cell is an empty value.
func appendRow(dst []byte, cells [][]byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cells)))
	for _, c := range cells {
		if c == nil {
			dst = binary.BigEndian.AppendUint32(dst, 0xFFFFFFFF)
			continue
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(c)))
		dst = append(dst, c...)
	}
	return dst
}

// formatOf returns the format code for column i under Bind-style codes.
func formatOf(formats []int16, i int) int16 {
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
