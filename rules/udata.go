package rules

import (
	"bytes"
	"unicode/utf8"
)

// Rule user data is a list of type-length-value records (libnftnl's
// nftnl_udata); type 0 is the rule comment, a NUL-terminated string that
// nft shows after the rule. nft limits comments to 128 bytes with the NUL.
const (
	udataComment    = 0
	maxCommentBytes = 127
)

// commentUserData returns the user data carrying comment s, cut to
// maxCommentBytes on a UTF-8 boundary; nil for an empty comment.
func commentUserData(s string) []byte {
	if s == "" {
		return nil
	}
	if len(s) > maxCommentBytes {
		i := maxCommentBytes
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	b := make([]byte, 0, len(s)+3)
	b = append(b, udataComment, byte(len(s)+1))
	b = append(b, s...)
	return append(b, 0)
}

// commentFromUserData returns the comment in user data b, or "".
func commentFromUserData(b []byte) string {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return ""
		}
		if typ == udataComment {
			c, _, _ := bytes.Cut(b[2:2+n], []byte{0})
			return string(c)
		}
		b = b[2+n:]
	}
	return ""
}
