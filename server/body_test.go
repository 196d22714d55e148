package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/medgr2/medgr2/server/api"
)

// TestReadBody: readBody returns the body whole, whether its
// Content-Length is right, absent (chunked) or smaller than the body, and
// passes on the MaxBytesReader error of a body over the limit.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	for _, tc := range []struct {
		name   string
		length int64
	}{
		{"exact", int64(len(body))},
		{"unknown", -1},
		{"short header", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.ContentLength = tc.length
			got, err := readBody(r)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, %v; want %d", len(got), err, len(body))
			}
		})
	}
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 100)
	var mbe *http.MaxBytesError
	if _, err := readBody(r); !errors.As(err, &mbe) {
		t.Fatalf("over the limit: %v, want *http.MaxBytesError", err)
	}
}

// BenchmarkReadBody reads a 160 kB JSON body (a base64 640×480 JPEG is
// about that) with io.ReadAll and with readBody.
func BenchmarkReadBody(b *testing.B) {
	body := bytes.Repeat([]byte("A"), 160<<10)
	for _, bc := range []struct {
		name string
		read func(*http.Request) ([]byte, error)
	}{
		{"ReadAll", func(r *http.Request) ([]byte, error) { return io.ReadAll(r.Body) }},
		{"readBody", readBody},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				if _, err := bc.read(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestUnmarshalBodyAgreesWithEncodingJSON: unmarshalBody accepts exactly
// the bodies encoding/json accepts, with the same values, on valid
// requests and on the malformed shapes goccy/go-json and encoding/json
// are known to treat differently (wrong types, trailing data, invalid
// UTF-8, duplicate and differently cased keys, escapes, numbers).
func TestUnmarshalBodyAgreesWithEncodingJSON(t *testing.T) {
	img := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1, 2, 250}, 300))
	for _, body := range []string{
		`{"image":"` + img + `","question":"q?","options":["a","b"],"mode":"fast"}`,
		`{"options":"a"}`,
		`{"options":["a",1]}`,
		`{"question":1}`,
		`{"question":"q"} trailing`,
		`{"question":"q"}{"question":"r"}`,
		`{"question":"q",}`,
		`{"question":"q" "mode":"x"}`,
		"{\"question\":\"\xff\xfe\"}",
		`{"question":"a","question":"b"}`,
		`{"QUESTION":"upper","Options":["x","y"]}`,
		`{"question":"\u00e9\n\"\\"}`,
		`{"question":"\ud800"}`,
		`{"question":"q","options":null}`,
		`{"question":"q","extra":{"deep":[1,2,{"x":null}]}}`,
		`{"question":"q","extra":1e400}`,
		`[]`,
		`null`,
		`"string"`,
		`{`,
		`{"image":`,
		` {"question":"q"} `,
	} {
		var want api.VQARequest
		wantErr := json.Unmarshal([]byte(body), &want)
		var got api.VQARequest
		err := unmarshalBody([]byte(body), &got)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%.60q: error %v, encoding/json %v", body, err, wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%.60q: decoded %+v, encoding/json %+v", body, got, want)
		}
	}
}

// BenchmarkDecodeJSON decodes a VQA request with a 120 kB image (a 160 kB
// body) with the server's decoder and with encoding/json.
func BenchmarkDecodeJSON(b *testing.B) {
	raw := make([]byte, 120000)
	for i := range raw {
		raw[i] = byte(i*7 + i/251)
	}
	body, _ := json.Marshal(api.VQARequest{Image: base64.StdEncoding.EncodeToString(raw), Question: "What abnormality is seen?",
		Options: []string{"a", "b", "c", "d"}})
	for _, c := range []struct {
		name string
		fn   func([]byte, any) error
	}{{"server", unmarshalBody}, {"encoding-json", json.Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var r api.VQARequest
				if err := c.fn(body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
