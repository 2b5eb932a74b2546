package groqwebhook

import (
	"net/http"
)

// removeReserved deletes every header a client must not set, matching names
// in any case and with any other punctuation read as '-': backends behind
// CGI and some frameworks read X-Groq_Verified or X-Groq.Verified alike.
func (h *Handler) removeReserved(header http.Header) {
	for name := range header {
		for _, reserved := range h.reserved {
			if sameHeaderName(name, reserved) {
				delete(header, name)
				break
			}
		}
	}
}

// headerMatchForm folds a header name to lower case, with every byte that
// is not a letter or a digit read as '-'.
func headerMatchForm(name string) string {
	folded := []byte(name)
	for i, c := range folded {
		folded[i] = foldHeaderByte(c)
	}
	return string(folded)
}

// sameHeaderName reports whether name, folded as by headerMatchForm, equals
// folded, without allocating: it runs for every header of every request.
func sameHeaderName(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldHeaderByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return c
	}
	return '-'
}
