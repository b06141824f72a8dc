package merge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errNotISO: the text of a date or time is not in the ISO DateStyle (the
// client set another one), so it cannot be ordered here (see notISOError).
var errNotISO = errors.New("DateStyle must be ISO")

// parseTimeText reads date, timestamp and timestamptz text in the ISO
// DateStyle (Postgres's default) into a number that orders like the value:
// days for dates, microseconds for timestamps (timestamptz shifted to UTC by
// its printed offset). Other DateStyles are refused.
func parseTimeText(oid uint32, s string) (int64, error) {
	if v, ok := infinityTime(s); ok {
		return v, nil
	}
	s, bc := trimBC(s)
	datePart, rest, _ := strings.Cut(s, " ")
	days, err := parseISODate(datePart, bc)
	if err != nil {
		return 0, err
	}
	if oid == oidDate {
		if rest != "" {
			return 0, fmt.Errorf("bad date %q", s)
		}
		return days, nil
	}
	clock, offset := rest, ""
	if oid == oidTimestamptz {
		i := strings.LastIndexAny(rest, "+-")
		if i < 0 {
			return 0, fmt.Errorf("bad timestamptz %q: %w", s, errNotISO)
		}
		clock, offset = rest[:i], rest[i:]
	}
	micros, err := parseClock(clock)
	if err != nil {
		return 0, fmt.Errorf("bad timestamp %q (%w): %w", s, errNotISO, err)
	}
	off, err := parseOffset(offset)
	if err != nil {
		return 0, fmt.Errorf("bad timestamptz %q: %w", s, err)
	}
	return days*86_400_000_000 + micros - off*1_000_000, nil
}

// parseISODate reads YYYY-MM-DD (year may have more than 4 digits) into
// days since 2000-01-01 on the proleptic Gregorian calendar.
func parseISODate(s string, bc bool) (int64, error) {
	parts := strings.Split(s, "-")
	// ISO prints a year of 4 digits or more; DateStyle Postgres prints
	// dates as MM-DD-YYYY (or DD-MM-YYYY), which must not pass for one.
	if len(parts) != 3 || len(parts[0]) < 4 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, fmt.Errorf("bad date %q: %w", s, errNotISO)
	}
	var n [3]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad date %q: %w", s, errNotISO)
		}
		n[i] = v
	}
	if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 {
		return 0, fmt.Errorf("bad date %q: %w", s, errNotISO)
	}
	y := n[0]
	if bc {
		y = 1 - y // 1 BC is astronomical year 0
	}
	return daysFromCivil(y, n[1], n[2]) - pgEpochDays, nil
}

// pgEpochDays is 2000-01-01, the epoch of binary dates and timestamps, so
// text and binary values of one column land on the same scale.
const pgEpochDays = 10957

// daysFromCivil is Howard Hinnant's days_from_civil.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// parseClock reads HH:MM:SS[.ffffff] into microseconds.
func parseClock(s string) (int64, error) {
	hms := strings.Split(s, ":")
	if len(hms) != 3 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	h, err1 := strconv.ParseInt(hms[0], 10, 64)
	m, err2 := strconv.ParseInt(hms[1], 10, 64)
	sec, frac, _ := strings.Cut(hms[2], ".")
	sv, err3 := strconv.ParseInt(sec, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(frac) > 6 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad time %q", s)
		}
		us = f
	}
	return ((h*60+m)*60+sv)*1_000_000 + us, nil
}

// parseOffset reads +HH[:MM[:SS]] into seconds east of UTC ("" is 0).
func parseOffset(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	sign := int64(1)
	if s[0] == '-' {
		sign = -1
	}
	var secs int64
	for i, p := range strings.Split(s[1:], ":") {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || i > 2 {
			return 0, fmt.Errorf("bad offset %q", s)
		}
		secs += v * []int64{3600, 60, 1}[i]
	}
	return sign * secs, nil
}
