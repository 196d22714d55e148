package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
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
