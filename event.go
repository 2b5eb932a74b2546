package groqwebhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// event holds the fields of a webhook event that the handler uses.
type event struct {
	ID   string
	Type string
}

// parseEvent reads the top-level "id" and "type" string members of a JSON
// object body. It scans without decoding and stops as soon as it has seen
// both, so a large event costs little more than a small one when they come
// first, as senders put them. Keys match exactly, as backends match them
// (encoding/json alone would also take "ID"). A member that is not a string,
// or a body that is not a JSON object, yields an empty field, and the event
// is still forwarded. Both strings share one allocation.
func parseEvent(body []byte) event {
	var id, typ []byte
	var idFound, typFound bool
	s := jsonScanner{data: body}
	if !s.consume('{') {
		return event{}
	}
	for !(idFound && typFound) {
		key, ok := s.string()
		if !ok || !s.consume(':') {
			break
		}
		switch {
		case keyIs(key, "id") && !idFound:
			id, idFound = s.stringValue()
		case keyIs(key, "type") && !typFound:
			typ, typFound = s.stringValue()
		default:
			if !s.skipValue() {
				return event{}
			}
		}
		if !s.consume(',') {
			break
		}
	}
	var text strings.Builder
	text.Grow(len(id) + len(typ))
	text.Write(id)
	text.Write(typ)
	both := text.String()
	return event{ID: both[:len(id)], Type: both[len(id):]}
}

// jsonScanner walks JSON text without building values. Its methods skip
// leading white space and report false on anything malformed.
type jsonScanner struct {
	data []byte
	pos  int
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

// stringValue steps over a value and returns its text if it is a string
// (nil and true for any other well-formed value).
func (s *jsonScanner) stringValue() ([]byte, bool) {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '"' {
		quoted, ok := s.string()
		if !ok {
			return nil, false
		}
		text, ok := unescape(quoted)
		return text, ok
	}
	return nil, s.skipValue()
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
