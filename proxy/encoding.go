package proxy

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"

	"github.com/pgrouter/pgrouter/router"
)

// A client whose client_encoding is not UTF8 sends SQL texts, text
// parameters and COPY data in that encoding; the shards (server_encoding
// UTF8) convert them before parsing and hashing. The router parses UTF-8
// and hashes the key bytes it is given, so what it reads is converted here
// first: the key hashes as the shard's Postgres hashes it, and a literal
// such as 'café' in LATIN1 no longer makes the text unparsable. Texts the
// proxy builds from converted ones (split INSERT parts, scatter SQL) are
// converted back before they go to backends, which speak the client's
// encoding. ASCII needs no conversion in any encoding Postgres offers.

// clientEncodings maps Postgres's encoding names (lower case, without
// '_', '-', quotes and spaces: asyncpg sends 'utf-8') to their
// converters; nil means no conversion.
var clientEncodings = map[string]encoding.Encoding{
	"utf8": nil, "unicode": nil, "sqlascii": nil,
	"latin1": charmap.ISO8859_1, "iso88591": charmap.ISO8859_1,
	"latin2": charmap.ISO8859_2, "iso88592": charmap.ISO8859_2,
	"latin3": charmap.ISO8859_3, "iso88593": charmap.ISO8859_3,
	"latin4": charmap.ISO8859_4, "iso88594": charmap.ISO8859_4,
	"latin5": charmap.ISO8859_9, "iso88599": charmap.ISO8859_9,
	"latin6": charmap.ISO8859_10, "iso885910": charmap.ISO8859_10,
	"latin7": charmap.ISO8859_13, "iso885913": charmap.ISO8859_13,
	"latin8": charmap.ISO8859_14, "iso885914": charmap.ISO8859_14,
	"latin9": charmap.ISO8859_15, "iso885915": charmap.ISO8859_15,
	"latin10": charmap.ISO8859_16, "iso885916": charmap.ISO8859_16,
	"iso88595": charmap.ISO8859_5, "iso88596": charmap.ISO8859_6,
	"iso88597": charmap.ISO8859_7, "iso88598": charmap.ISO8859_8,
	"win866": charmap.CodePage866, "alt": charmap.CodePage866,
	"win874": charmap.Windows874, "win1250": charmap.Windows1250,
	"win1251": charmap.Windows1251, "win": charmap.Windows1251,
	"win1252": charmap.Windows1252, "win1253": charmap.Windows1253,
	"win1254": charmap.Windows1254, "win1255": charmap.Windows1255,
	"win1256": charmap.Windows1256, "win1257": charmap.Windows1257,
	"win1258": charmap.Windows1258,
	"koi8r":   charmap.KOI8R, "koi8": charmap.KOI8R, "koi8u": charmap.KOI8U,
	"eucjp": japanese.EUCJP, "sjis": japanese.ShiftJIS, "shiftjis": japanese.ShiftJIS,
	"euckr": korean.EUCKR, "uhc": korean.EUCKR,
	"gbk": simplifiedchinese.GBK, "cp936": simplifiedchinese.GBK, "gb18030": simplifiedchinese.GB18030,
	"euccn": simplifiedchinese.GBK, "big5": traditionalchinese.Big5,
}

// clientCodec is the converter of the client's current client_encoding
// (nil for UTF-8 and SQL_ASCII); ok is false for an encoding pgrouter
// cannot convert.
func (ss *session) clientCodec() (enc encoding.Encoding, name string, ok bool) {
	name, set := settingValue(ss.desired["client_encoding"])
	if !set {
		return nil, "UTF8", true
	}
	key := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '\'' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(name))
	if strings.HasPrefix(key, "windows") {
		key = "win" + key[len("windows"):]
	}
	enc, ok = clientEncodings[key]
	return enc, name, ok
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// toUTF8 converts client text for the router (s itself when nothing to
// do: ASCII, or a UTF-8 client). The common case costs one scan and no
// allocation: every simple query passes here.
func toUTF8[T string | []byte](ss *session, s T) (T, *pgconn.PgError) {
	if isASCII(s) {
		return s, nil
	}
	enc, name, ok := ss.clientCodec()
	switch {
	case !ok:
		return s, pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("pgrouter cannot read non-ASCII text in client_encoding %s", name),
			"use client_encoding UTF8 (or a LATIN*/WIN*/EUC*/SJIS/BIG5/GBK encoding)")
	case enc == nil:
		return s, nil
	}
	out, err := enc.NewDecoder().Bytes([]byte(s))
	if err != nil {
		return s, pgwire.Error(pgwire.CharacterNotInRepertoire, fmt.Sprintf("invalid byte sequence for encoding %q", name), "")
	}
	return T(out), nil
}

// routerText is sql as the router must read it: UTF-8.
func (ss *session) routerText(sql string) (string, *pgconn.PgError) {
	out, perr := toUTF8(ss, sql)
	if perr != nil {
		return "", perr
	}
	return out, nil
}

// routerArgs converts the text-format parameters of args (a copy when
// any changes).
func (ss *session) routerArgs(args router.Args) (router.Args, *pgconn.PgError) {
	var params [][]byte
	for i, p := range args.Params {
		if p == nil || isASCII(p) || paramIsBinary(args.Formats, i) {
			continue
		}
		u, perr := toUTF8(ss, p)
		if perr != nil {
			return args, perr
		}
		if params == nil {
			params = append([][]byte(nil), args.Params...)
		}
		params[i] = u
	}
	if params != nil {
		args.Params = params
	}
	return args, nil
}

func paramIsBinary(formats []int16, i int) bool {
	switch {
	case len(formats) == 1:
		return formats[0] == 1
	case i < len(formats):
		return formats[i] == 1
	}
	return false
}

// clientText converts a UTF-8 text the proxy built back to the client's
// encoding, which the backends speak (it came from that encoding).
func (ss *session) clientText(s string) string {
	if isASCII(s) {
		return s
	}
	if enc, _, ok := ss.clientCodec(); ok && enc != nil {
		if out, err := enc.NewEncoder().String(s); err == nil {
			return out
		}
	}
	return s
}

// partsToClient converts split INSERT parts back to the client's encoding.
func (ss *session) partsToClient(parts []router.InsertPart) {
	for i := range parts {
		p := &parts[i]
		p.SQL = ss.clientText(p.SQL)
		for j, v := range p.Params {
			if v != nil && !isASCII(v) && !paramIsBinary(p.Formats, j) {
				p.Params[j] = []byte(ss.clientText(string(v)))
			}
		}
	}
}

// splitInsert cuts a multi-row INSERT into its shards' parts, reading it
// (and its text parameters) as UTF-8, the parts back in the client's encoding.
func (ss *session) splitInsert(sql string, args router.Args) ([]router.InsertPart, error) {
	rsql, perr := ss.routerText(sql)
	if perr != nil {
		return nil, perr
	}
	rargs, perr := ss.routerArgs(args)
	if perr != nil {
		return nil, perr
	}
	parts, err := ss.router.SplitInsert(rsql, rargs, ss.hints)
	if err != nil {
		return nil, err
	}
	ss.partsToClient(parts)
	return parts, nil
}

// keyToUTF8 converts a COPY row's text key (nil is NULL).
func (ss *session) keyToUTF8(key []byte) ([]byte, error) {
	if key == nil {
		return nil, nil
	}
	u, perr := toUTF8(ss, key)
	if perr != nil {
		return nil, perr
	}
	return u, nil
}
