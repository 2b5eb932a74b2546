package groqwebhook

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name string
		body string
		want event
	}{
		{"id and type", `{"id":"evt_1","type":"resource.created"}`, event{"evt_1", "resource.created"}},
		{"type first", `{"type":"a.b","id":"evt_2"}`, event{"evt_2", "a.b"}},
		{"white space", " \n{ \"id\" :\t\"evt_3\" , \"type\": \"t\" }\r\n", event{"evt_3", "t"}},
		{"after nested values", `{"data":{"id":"inner","x":[1,{"type":"no"}],"s":"}\"{"},"n":-1.5e3,"ok":true,"none":null,"id":"evt_4","type":"t"}`, event{"evt_4", "t"}},
		{"nested only", `{"data":{"id":"inner","type":"inner"}}`, event{}},
		{"id only", `{"id":"evt_5","data":{}}`, event{ID: "evt_5"}},
		{"escaped value", `{"id":"evt_\u0036\"q","type":"t"}`, event{"evt_6\"q", "t"}},
		{"escaped key", `{"\u0069d":"evt_7","type":"t"}`, event{"evt_7", "t"}},
		{"keys match exactly", `{"ID":"evt_8","Type":"t"}`, event{}},
		{"number id", `{"id":8,"type":"t"}`, event{Type: "t"}},
		{"null type", `{"id":"evt_9","type":null}`, event{ID: "evt_9"}},
		{"first occurrence wins", `{"id":"first","id":"second","type":"t"}`, event{"first", "t"}},
		{"array", `[{"id":"evt_10"}]`, event{}},
		{"string", `"evt_11"`, event{}},
		{"empty object", `{}`, event{}},
		{"empty body", ``, event{}},
		{"not JSON", `id=evt_12`, event{}},
		{"broken before the id", `{"data":{"x":1},"id"`, event{}},
		{"unterminated string", `{"id":"evt_13`, event{}},
		{"control character in string", "{\"id\":\"evt\n14\"}", event{}},
		{"invalid UTF-8 decoded as encoding/json does", "{\"id\":\"evt_\xff\",\"type\":\"t\"}", event{"evt_\ufffd", "t"}},
		{"broken escape", `{"id":"evt_\uZZZZ","type":"t"}`, event{Type: "t"}},
		{"unbalanced nesting", `{"data":{"x":[1,2}`, event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseEvent([]byte(tt.body)); got != tt.want {
				t.Errorf("parseEvent(%s) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseEventAllocations(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"resource.created","data":{"pad":"` + strings.Repeat("x", 4096) + `"}}`)
	if n := testing.AllocsPerRun(100, func() { parseEvent(body) }); n != 1 {
		t.Errorf("parseEvent allocates %v times, want 1 (both strings together)", n)
	}
}

// FuzzParseEvent checks the scanner against encoding/json: on any valid
// JSON object, both must find the same id and type, taking the first of a
// repeated key (encoding/json alone would take the last). Any other input
// must not panic.
func FuzzParseEvent(f *testing.F) {
	f.Add(`{"id":"evt_1","type":"t"}`)
	f.Add(`{"id":"a\"b\\c","data":{"type":"no"}}`)
	f.Add(`{"type":"\u00e9\ud83d\ude00", "id" : "\u0000"}`)
	f.Add("{\"id\":\"evt_\xff\",\"type\":\"t\"}")
	f.Add(`{"id":1,"id":"second","data":[{"id":"x"}],"type":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		got := parseEvent([]byte(body))
		if !json.Valid([]byte(body)) {
			return
		}
		if want := firstStringMembers(body); got != want {
			t.Fatalf("parseEvent(%q) = %+v, encoding/json says %+v", body, got, want)
		}
	})
}

// firstStringMembers decodes body with encoding/json and returns the first
// top-level "id" and "type" members, when they are strings.
func firstStringMembers(body string) event {
	var e event
	dec := json.NewDecoder(strings.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return e
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return e
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return e
		}
		if (key == "id" || key == "type") && !seen[key] {
			seen[key] = true
			var text string
			if json.Unmarshal(value, &text) == nil {
				if key == "id" {
					e.ID = text
				} else {
					e.Type = text
				}
			}
		}
	}
	return e
}
