package tokenizer

import "unicode/utf8"

// byteLevel holds the GPT-2 byte-to-character tables: every byte maps to one
// printable rune so that arbitrary bytes can live in a string vocabulary.
type byteLevel struct {
	enc [256]string   // byte → its printable rune, as a string
	dec map[rune]byte // printable rune → byte
}

// newByteLevel builds the tables exactly as GPT-2's bytes_to_unicode does:
// printable Latin-1 bytes map to themselves, the rest to U+0100 upwards.
func newByteLevel() *byteLevel {
	bl := &byteLevel{dec: make(map[rune]byte, 256)}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if !printable {
			r = rune(256 + n)
			n++
		}
		bl.enc[b] = string(r)
		bl.dec[r] = byte(b)
	}
	return bl
}

// encode maps every byte of s to its printable rune.
func (bl *byteLevel) encode(s string) string {
	buf := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		buf = append(buf, bl.enc[s[i]]...)
	}
	return string(buf)
}

// decodeAppend appends the bytes a byte-level token stands for. A token with
// a rune outside the table (an added token such as "<|im_start|>" is fine,
// it is all ASCII) is appended as its own UTF-8 bytes, as Hugging Face does.
func (bl *byteLevel) decodeAppend(dst []byte, tok string) []byte {
	start := len(dst)
	for _, r := range tok {
		b, ok := bl.dec[r]
		if !ok {
			return append(dst[:start], tok...)
		}
		dst = append(dst, b)
	}
	return dst
}

// lossyUTF8 turns bytes into a string, replacing each maximal ill-formed
// subsequence with U+FFFD the way WHATWG TextDecoder and Rust's
// String::from_utf8_lossy do.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		out = append(out, "\uFFFD"...)
		i += maximalSubpart(b[i:])
	}
	return string(out)
}

// maximalSubpart returns the length (≥ 1) of the longest prefix of b that
// is a valid start of a UTF-8 sequence but not a complete one.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
