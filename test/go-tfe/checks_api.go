package main

// What every list and document shares: pages (go-tfe reads meta.pagination,
// other clients follow links), include=, and JSON:API's media type.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

// document is the part of a JSON:API list that go-tfe does not expose.
type document struct {
	Data  []struct{ ID string } `json:"data"`
	Links map[string]*string    `json:"links"`
}

type pageFetcher func(ctx context.Context, page int) ([]string, *tfe.Pagination, error)

// checkPages reads the list of want (every item of it, in any order) two
// at a time: meta.pagination and links of every page, links.next
// followed, and a page past the end.
func (c *checker) checkPages(ctx context.Context, want []string, suffix string, fetch pageFetcher) error {
	const size = 2
	total := len(want)
	last := (total + size - 1) / size
	if last < 2 {
		return fmt.Errorf("pagination needs more than %d items, have %d", size, total)
	}
	var e expect
	var seen []string
	pageIDs := map[int][]string{}
	for page := 1; page <= last; page++ {
		mark := c.rec.mark()
		got, p, err := fetch(ctx, page)
		if !e.noErr(fmt.Sprintf("page %d", page), err) {
			continue
		}
		pageIDs[page] = got
		seen = append(seen, got...)
		wantLen := size
		if page == last {
			wantLen = total - size*(last-1)
		}
		e.eq(fmt.Sprintf("items on page %d", page), len(got), wantLen)
		prev, next := page-1, page+1
		if page == last {
			next = 0
		}
		if p == nil {
			e.that(false, "page %d has no meta.pagination", page)
		} else {
			e.eq(fmt.Sprintf("page %d meta.pagination", page), *p, tfe.Pagination{CurrentPage: page, PreviousPage: prev, NextPage: next, TotalPages: last, TotalCount: total})
		}
		if ex, ok := c.rec.last(mark, "GET", suffix); ok {
			c.checkLinks(ctx, &e, ex, page, last, size)
		} else {
			e.that(false, "page %d: no GET …%s recorded", page, suffix)
		}
	}
	sort.Strings(seen)
	e.eq("items of all pages", seen, sorted(want))
	if len(pageIDs[1]) > 0 && len(pageIDs[1]) == len(want) {
		e.that(false, "page 1 holds every item: page[size] was ignored")
	}
	got, p, err := fetch(ctx, 999)
	if e.noErr("page 999", err) {
		e.eq("items on page 999", len(got), 0)
		e.that(p != nil && p.CurrentPage == 999 && p.TotalCount == total, "page 999 meta.pagination = %+v, want current-page 999, total-count %d", p, total)
	}
	return e.err()
}

// checkLinks reads links of a recorded page: self, first and last always,
// prev and next null at the ends, and next leading to the next page.
func (c *checker) checkLinks(ctx context.Context, e *expect, ex exchange, page, last, size int) {
	var doc document
	if err := json.Unmarshal(ex.Body, &doc); err != nil {
		e.that(false, "page %d is not JSON: %v", page, err)
		return
	}
	pageOf := func(name string) (int, *url.URL) {
		link := doc.Links[name]
		if link == nil {
			return 0, nil
		}
		u, err := ex.URL.Parse(*link)
		if err != nil {
			e.that(false, "page %d: links.%s %q is not a URL", page, name, *link)
			return -1, nil
		}
		n, _ := strconv.Atoi(u.Query().Get("page[number]"))
		if s := u.Query().Get("page[size]"); s != strconv.Itoa(size) {
			e.that(false, "page %d: links.%s %q has page[size]=%q, want %d", page, name, *link, s, size)
		}
		return n, u
	}
	for name, want := range map[string]int{"self": page, "first": 1, "last": last} {
		got, _ := pageOf(name)
		e.that(got == want, "page %d: links.%s points at page %d, want %d (links: %s)", page, name, got, want, linksText(doc.Links))
	}
	prev, _ := pageOf("prev")
	next, nextURL := pageOf("next")
	if page == 1 {
		e.that(prev == 0 && doc.Links["prev"] == nil, "page 1: links.prev = %s, want null", linksText(doc.Links))
	} else {
		e.that(prev == page-1, "page %d: links.prev points at page %d", page, prev)
	}
	if page == last {
		e.that(doc.Links["next"] == nil, "page %d (the last): links.next = %s, want null", page, linksText(doc.Links))
		return
	}
	e.that(next == page+1, "page %d: links.next points at page %d (links: %s)", page, next, linksText(doc.Links))
	if nextURL == nil {
		return
	}
	// A client that only follows links gets the next page.
	resp, err := c.raw("GET", nextURL.String(), c.cfg.token, nil)
	if !e.noErr("following links.next", err) {
		return
	}
	var nextDoc document
	if resp.Status != 200 || json.Unmarshal(resp.Body, &nextDoc) != nil {
		e.that(false, "following links.next %s answered %d", nextURL, resp.Status)
		return
	}
	e.that(len(nextDoc.Data) > 0, "following links.next %s gave no items", nextURL)
}

func linksText(links map[string]*string) string {
	parts := make([]string, 0, len(links))
	for name, link := range links {
		value := "null"
		if link != nil {
			value = *link
		}
		parts = append(parts, name+"="+value)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func (c *checker) checkIncludeAndMediaType() {
	c.check("include: an agent pool's workspaces", func(ctx context.Context) error {
		if err := need(c.fx.runsWS != nil, "the runs' workspace"); err != nil {
			return err
		}
		pool, err := c.client.AgentPools.ReadWithOptions(ctx, c.cfg.poolID, &tfe.AgentPoolReadOptions{Include: []tfe.AgentPoolIncludeOpt{tfe.AgentPoolWorkspaces}})
		if err != nil {
			return err
		}
		for _, ws := range pool.Workspaces {
			if ws.ID == c.fx.runsWS.ID {
				if ws.Name != c.fx.runsWS.Name {
					return fmt.Errorf("included workspace %s has name %q, want %q (not in included?)", ws.ID, ws.Name, c.fx.runsWS.Name)
				}
				return nil
			}
		}
		return fmt.Errorf("workspaces relationship %v lacks %s, which uses the pool", ids(pool.Workspaces, func(w *tfe.Workspace) string { return w.ID }), c.fx.runsWS.ID)
	})
	c.check("include: an unknown value is refused (400)", func(ctx context.Context) error {
		if err := need(c.fx.runsWS != nil, "the runs' workspace"); err != nil {
			return err
		}
		_, err := c.client.Workspaces.ReadByIDWithOptions(ctx, c.fx.runsWS.ID, &tfe.WorkspaceReadOptions{Include: []tfe.WSIncludeOpt{"no_such_relationship"}})
		if !errors.Is(err, tfe.ErrInvalidIncludeValue) {
			return errors.New("include=no_such_relationship: " + errString(err) + ", want 400 with \"include parameter\" in the error (ErrInvalidIncludeValue)")
		}
		return nil
	})
	c.check("media type: every JSON:API answer is application/vnd.api+json", func(context.Context) error {
		offenders := map[string]bool{}
		for _, ex := range c.rec.since(0) {
			if !strings.HasPrefix(ex.URL.Path, "/api/v2/") || !isJSONAPIDocument(ex.Body) {
				continue
			}
			if !strings.HasPrefix(ex.ContentType, "application/vnd.api+json") {
				offenders[fmt.Sprintf("%s %s -> %d (%s)", ex.Method, ex.URL.Path, ex.Status, ex.ContentType)] = true
			}
		}
		if len(offenders) == 0 {
			return nil
		}
		list := make([]string, 0, len(offenders))
		for o := range offenders {
			list = append(list, o)
		}
		sort.Strings(list)
		if len(list) > 12 {
			list = append(list[:12], fmt.Sprintf("and %d more", len(list)-12))
		}
		return errors.New("answered with another media type: " + strings.Join(list, "; "))
	})
}

// isJSONAPIDocument tells a JSON:API document (data or errors at the top)
// from the raw files the API also serves (states, JSON plans, logs).
func isJSONAPIDocument(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	_, data := top["data"]
	_, errs := top["errors"]
	return data || errs
}
