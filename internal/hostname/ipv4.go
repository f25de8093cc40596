package hostname

import (
	"net/netip"
	"strings"
)

// endsInNumber is the WHATWG URL Standard's "ends in a number checker"
// for a host without a trailing dot: the last label is all digits, or
// "0x"/"0X" followed by hex digits (possibly none). Such a host is an IPv4
// address or invalid; it is never a name.
func endsInNumber(s string) bool {
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	if allDigits(last, 10) {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4 is the WHATWG URL Standard's IPv4 parser for a host without
// a trailing dot: one to four numbers separated by dots, each decimal,
// octal (leading 0) or hexadecimal (leading 0x); every number but the last
// is one byte, the last fills the remaining bytes. So "127.1" is
// 127.0.0.1 and "2130706433" is 127.0.0.1, as for inet_aton.
func parseIPv4(s string) (netip.Addr, bool) {
	var nums [4]uint64
	n := 0
	for part := range strings.SplitSeq(s, ".") {
		if n == 4 {
			return netip.Addr{}, false
		}
		v, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		nums[n] = v
		n++
	}
	for i := range n - 1 {
		if nums[i] > 255 {
			return netip.Addr{}, false
		}
	}
	if nums[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	v := nums[n-1]
	for i := range n - 1 {
		v += nums[i] << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Number is the WHATWG URL Standard's IPv4 number parser. Values
// above 2^32 are reported as 2^32 (they are invalid in every position), so
// nothing overflows however long the input.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if !allDigits(s, base) {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v*base + uint64(digitValue(s[i]))
		if v > 1<<32 {
			v = 1 << 32
		}
	}
	return v, true
}

// allDigits reports whether every byte of s is a digit in base (8, 10 or
// 16); it is true for the empty string.
func allDigits(s string, base uint64) bool {
	for i := 0; i < len(s); i++ {
		if d := digitValue(s[i]); d < 0 || uint64(d) >= base {
			return false
		}
	}
	return true
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
