package main

// Every HTTP exchange of the program goes through the recorder: go-tfe's own
// requests (its client is given this transport), the pre-signed URLs it
// follows without a token, and the raw requests of the checks. A failing
// check names the exchange that went wrong, and the checks that go-tfe
// cannot see through (pagination links, STX/ETX bytes, media types, whether
// a token was sent) read what was recorded.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bodies are kept up to this size: enough for any JSON:API document the
// checks read back, small enough that hundreds of polls cost little.
const keptBodyBytes = 256 << 10

// exchange is one request the program sent and what came back.
type exchange struct {
	Method      string
	URL         *url.URL
	Auth        bool // the request carried an Authorization header
	Status      int
	ContentType string
	Body        []byte
	Err         string
}

type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchange{Method: req.Method, URL: req.URL, Auth: req.Header.Get("Authorization") != ""}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		ex.Err = err.Error()
		r.add(ex)
		return nil, err
	}
	// The whole body is read here and handed on from memory, so that what
	// go-tfe parses and what the checks inspect are the same bytes.
	body, readErr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	ex.Status = resp.StatusCode
	ex.ContentType = resp.Header.Get("Content-Type")
	ex.Body = body
	if len(ex.Body) > keptBodyBytes {
		ex.Body = ex.Body[:keptBodyBytes]
	}
	if readErr != nil {
		ex.Err = "reading the body: " + readErr.Error()
		r.add(ex)
		return nil, readErr
	}
	r.add(ex)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

func (r *recorder) add(ex exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, ex)
}

// mark is the position of the next exchange, for since().
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

func (r *recorder) since(mark int) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log[mark:]...)
}

// culprit is the exchange a failure message names: the last refused or
// broken one since mark, else the last one (a 2xx answer with wrong content).
func (r *recorder) culprit(mark int) (exchange, bool) {
	log := r.since(mark)
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Err != "" || log[i].Status >= 400 {
			return log[i], true
		}
	}
	if len(log) == 0 {
		return exchange{}, false
	}
	return log[len(log)-1], true
}

// last is the newest exchange since mark whose method matches and whose path
// ends with suffix.
func (r *recorder) last(mark int, method, suffix string) (exchange, bool) {
	log := r.since(mark)
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Method == method && strings.HasSuffix(log[i].URL.Path, suffix) {
			return log[i], true
		}
	}
	return exchange{}, false
}

// describe renders an exchange on one line: method, path and query, status,
// media type and the start of the body.
func describe(ex exchange) string {
	target := ex.URL.Path
	if ex.URL.RawQuery != "" {
		target += "?" + ex.URL.RawQuery
	}
	if ex.Err != "" && ex.Status == 0 {
		return fmt.Sprintf("%s %s -> %s", ex.Method, target, ex.Err)
	}
	body := strings.Join(strings.Fields(printable(ex.Body)), " ")
	if len(body) > 400 {
		body = body[:400] + "…"
	}
	return fmt.Sprintf("%s %s -> %d (%s) %s", ex.Method, target, ex.Status, ex.ContentType, body)
}

// printable replaces control bytes (a log's STX and ETX) so one exchange stays on one line.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return '·'
		}
		return r
	}, string(b))
}

// rawResponse is what a check's own request got back.
type rawResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// raw sends a request through the recorder, with the API token or without
// one (how go-tfe follows pre-signed URLs).
func (c *checker) raw(method, target, token string, body []byte) (rawResponse, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	// A URL that never ends its answer (a log followed forever) fails the
	// check instead of hanging the program.
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return rawResponse{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/vnd.api+json")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return rawResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return rawResponse{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data}, err
}

// tampered is a pre-signed URL with its signature spoiled: the query
// dropped when it carries one, else the last character of the path changed
// (a signature in the path, as TFE's archivist URLs have it).
func tampered(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		u.RawQuery = ""
		return u.String(), nil
	}
	path := []byte(u.Path)
	if len(path) == 0 {
		return "", fmt.Errorf("URL %q has no path to tamper with", raw)
	}
	last := len(path) - 1
	if path[last] == 'A' {
		path[last] = 'B'
	} else {
		path[last] = 'A'
	}
	u.Path = string(path)
	u.RawPath = ""
	return u.String(), nil
}
