package provider

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// EventFields says where a JSON body holds an event's id and type.
type EventFields struct {
	// ID is the top-level string member holding the event's id, or "".
	ID string
	// Type is the member holding the event's type, or "".
	Type string
	// TypeParent, when set, names a top-level object whose Type member is
	// preferred to the top-level one (Slack's event.type).
	TypeParent string
	// Numbers makes a number a value too, as its literal text (Discord's
	// numeric interaction type).
	Numbers bool
}

// ParseEvent reads the event's id and type from a JSON object body. It
// scans without decoding and stops once it has all it looks for. Keys match
// exactly, as backends match them. A member of another kind, or a body that
// is not a JSON object, yields "". Both strings share one allocation.
func ParseEvent(body []byte, f EventFields) (id, typ string) {
	var idText, typText, nestedText []byte
	var idFound, typFound, nestedFound bool
	s := jsonScanner{data: body, numbers: f.Numbers}
	if !s.consume('{') {
		return "", ""
	}
	done := func() bool {
		return (idFound || f.ID == "") && (nestedFound || (typFound && f.TypeParent == "") || f.Type == "")
	}
	for !done() {
		key, ok := s.string()
		if !ok || !s.consume(':') {
			break
		}
		switch {
		case f.ID != "" && !idFound && keyIs(key, f.ID):
			idText, idFound = s.stringValue()
		case f.Type != "" && !typFound && keyIs(key, f.Type):
			typText, typFound = s.stringValue()
		case f.TypeParent != "" && !nestedFound && keyIs(key, f.TypeParent):
			nestedText, nestedFound = s.memberOf(f.Type)
			if !nestedFound && s.failed {
				return "", ""
			}
		default:
			if !s.skipValue() {
				return "", ""
			}
		}
		if !s.consume(',') {
			break
		}
	}
	if nestedFound && nestedText != nil {
		typText = nestedText
	}
	var text strings.Builder
	text.Grow(len(idText) + len(typText))
	text.Write(idText)
	text.Write(typText)
	both := text.String()
	return both[:len(idText)], both[len(idText):]
}

// number returns the literal text of a top-level number member, or nil.
func number(body []byte, name string) []byte {
	s := jsonScanner{data: body, numbers: true}
	if !s.consume('{') {
		return nil
	}
	for {
		key, ok := s.string()
		if !ok || !s.consume(':') {
			return nil
		}
		if keyIs(key, name) {
			s.skipSpace()
			if s.pos < len(s.data) && s.data[s.pos] == '"' {
				return nil
			}
			text, _ := s.stringValue()
			return text
		}
		if !s.skipValue() || !s.consume(',') {
			return nil
		}
	}
}

// jsonScanner walks JSON text without building values. Its methods skip
// leading white space and report false on anything malformed.
type jsonScanner struct {
	data    []byte
	pos     int
	numbers bool
	failed  bool
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// consume steps over c, if it comes next.
func (s *jsonScanner) consume(c byte) bool {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// string steps over a string and returns it with its quotes, escapes intact.
func (s *jsonScanner) string() ([]byte, bool) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return nil, false
	}
	start := s.pos
	for i := start + 1; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '\\':
			i++
		case c == '"':
			s.pos = i + 1
			return s.data[start:s.pos], true
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// stringValue steps over a value and returns its text if it is a string,
// or a number when numbers count (nil and true for any other well-formed
// value).
func (s *jsonScanner) stringValue() ([]byte, bool) {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '"' {
		quoted, ok := s.string()
		if !ok {
			return nil, false
		}
		return unescape(quoted)
	}
	start := s.pos
	if !s.skipValue() {
		return nil, false
	}
	if s.numbers && isNumber(s.data[start:s.pos]) {
		return s.data[start:s.pos], true
	}
	return nil, true
}

// memberOf steps over a value and, when it is an object, returns the text
// of its string member name. A malformed value sets failed.
func (s *jsonScanner) memberOf(name string) ([]byte, bool) {
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		if !s.skipValue() {
			s.failed = true
		}
		return nil, false
	}
	start := s.pos
	if !s.skipValue() {
		s.failed = true
		return nil, false
	}
	inner := jsonScanner{data: s.data[start:s.pos], numbers: s.numbers}
	inner.consume('{')
	for {
		key, ok := inner.string()
		if !ok || !inner.consume(':') {
			return nil, false
		}
		if keyIs(key, name) {
			return inner.stringValue()
		}
		if !inner.skipValue() || !inner.consume(',') {
			return nil, false
		}
	}
}

// skipValue steps over one value of any kind. Objects and arrays are
// skipped by counting brackets outside strings; what lies between is not
// checked, since only the top level is read.
func (s *jsonScanner) skipValue() bool {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '"':
		_, ok := s.string()
		return ok
	case '{', '[':
		depth := 0
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case '"':
				if _, ok := s.string(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				return true
			}
		}
		return false
	}
	start := s.pos
	for s.pos < len(s.data) && !endsLiteral(s.data[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// endsLiteral reports whether c ends a number, true, false or null.
func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// isNumber reports whether text is an integer: digits with an optional
// leading minus, which is all the numeric members read here hold.
func isNumber(text []byte) bool {
	if len(text) > 0 && text[0] == '-' {
		text = text[1:]
	}
	if len(text) == 0 {
		return false
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// unescape returns the text of a quoted JSON string: the bytes between the
// quotes when they are valid UTF-8 with no escape, which is the common case,
// else a copy decoded as encoding/json decodes it (invalid UTF-8 becomes
// U+FFFD), so that the handler sees what a backend sees.
func unescape(quoted []byte) ([]byte, bool) {
	text := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(text, '\\') < 0 && utf8.Valid(text) {
		return text, true
	}
	var decoded string
	if err := json.Unmarshal(quoted, &decoded); err != nil {
		return nil, false
	}
	return []byte(decoded), true
}

// keyIs reports whether a quoted key decodes to name.
func keyIs(quoted []byte, name string) bool {
	text, ok := unescape(quoted)
	return ok && string(text) == name
}
