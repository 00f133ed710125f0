package main

// State versions: the one a run wrote (current, download, outputs), and
// ones created through the API with TFE's checks of lock, MD5, serial and
// lineage; lists by organization and workspace name.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

func (c *checker) checkRunState() {
	c.checkWithAppliedRun("state versions: current after a run", func(ctx context.Context) error {
		sv, err := c.client.StateVersions.ReadCurrent(ctx, c.fx.runsWS.ID)
		if err != nil {
			return err
		}
		c.fx.appliedState = sv
		var e expect
		e.that(strings.HasPrefix(sv.ID, "sv-"), "id %q does not start with sv-", sv.ID)
		e.that(sv.Serial >= 1, "serial = %d, want >= 1", sv.Serial)
		e.that(strings.HasPrefix(sv.DownloadURL, "http"), "hosted-state-download-url %q is not an absolute URL", sv.DownloadURL)
		e.that(sv.Run != nil && sv.Run.ID == c.fx.appliedRun.ID, "run relationship = %s, want %s", rel(sv.Run), c.fx.appliedRun.ID)
		e.that(!sv.CreatedAt.IsZero(), "created-at is missing")
		again, err := c.client.StateVersions.Read(ctx, sv.ID)
		if e.noErr("read by id", err) {
			e.eq("serial read by id", again.Serial, sv.Serial)
		}
		return e.err()
	})
	c.check("state versions: download (pre-signed URL)", func(ctx context.Context) error {
		if err := need(c.fx.appliedState != nil, "the run's state version"); err != nil {
			return err
		}
		data, err := c.client.StateVersions.Download(ctx, c.fx.appliedState.DownloadURL)
		if err != nil {
			return err
		}
		var state stateJSON
		if err := json.Unmarshal(data, &state); err != nil {
			return fmt.Errorf("the download is not a state (%q): %w", head(data), err)
		}
		var e expect
		e.eq("serial in the state", state.Serial, c.fx.appliedState.Serial)
		c.fx.firstAID = state.resourceID("terraform_data", "a")
		e.that(c.fx.firstAID != "", "the state has no terraform_data.a")
		e.eq("greeting in the state", state.Outputs["greeting"].Value, greeting)
		c.checkSigned(&e, "state", c.fx.appliedState.DownloadURL, data)
		return e.err()
	})
	c.check("state versions: outputs", func(ctx context.Context) error {
		if err := need(c.fx.appliedState != nil, "the run's state version"); err != nil {
			return err
		}
		list, err := c.client.StateVersions.ListOutputs(ctx, c.fx.appliedState.ID, nil)
		if err != nil {
			return err
		}
		var e expect
		byName := map[string]*tfe.StateVersionOutput{}
		for _, output := range list.Items {
			byName[output.Name] = output
			e.that(output.ID != "", "output %s has no id", output.Name)
		}
		e.eq("output names", keys(mapKeys(byName)), []string{"answer", "greeting", "secret"})
		if o := byName["greeting"]; o != nil {
			e.eq("greeting", *o, tfe.StateVersionOutput{ID: o.ID, Name: "greeting", Type: "string", Value: greeting, DetailedType: o.DetailedType})
		}
		if o := byName["answer"]; o != nil {
			e.eq("answer value", o.Value, float64(42))
			e.eq("answer type", o.Type, "number")
		}
		if o := byName["secret"]; o != nil {
			e.eq("secret sensitive", o.Sensitive, true)
			e.eq("secret value in a list", o.Value, nil)
			c.fx.secretOutputID = o.ID
		}
		return e.err()
	})
	c.check("state version outputs: read a sensitive one alone", func(ctx context.Context) error {
		if err := need(c.fx.secretOutputID != "", "the sensitive output's id"); err != nil {
			return err
		}
		output, err := c.client.StateVersionOutputs.Read(ctx, c.fx.secretOutputID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("name", output.Name, "secret")
		e.eq("sensitive", output.Sensitive, true)
		e.eq("value", output.Value, secretOutput)
		return e.err()
	})
	c.check("state version outputs: current of a workspace", func(ctx context.Context) error {
		if err := need(c.fx.appliedState != nil, "the run's state version"); err != nil {
			return err
		}
		list, err := c.client.StateVersionOutputs.ReadCurrent(ctx, c.fx.runsWS.ID)
		if err != nil {
			return err
		}
		var e expect
		values := map[string]any{}
		for _, output := range list.Items {
			values[output.Name] = output.Value
		}
		e.eq("current outputs", values, map[string]any{"answer": float64(42), "greeting": greeting, "secret": nil})
		return e.err()
	})
	c.check("state versions: include outputs", func(ctx context.Context) error {
		if err := need(c.fx.appliedState != nil, "the run's state version"); err != nil {
			return err
		}
		sv, err := c.client.StateVersions.ReadCurrentWithOptions(ctx, c.fx.runsWS.ID, &tfe.StateVersionCurrentOptions{Include: []tfe.StateVersionIncludeOpt{tfe.SVoutputs}})
		if err != nil {
			return err
		}
		var e expect
		e.eq("included output names", sorted(ids(sv.Outputs, func(o *tfe.StateVersionOutput) string { return o.Name })), []string{"answer", "greeting", "secret"})
		return e.err()
	})
}

// checkSigned fetches a download URL without a token (want: the same
// bytes) and tampered with (want: refused).
func (c *checker) checkSigned(e *expect, what, target string, want []byte) {
	resp, err := c.raw("GET", target, "", nil)
	if e.noErr(what+" URL without a token", err) {
		e.that(resp.Status == 200 && bytes.Equal(resp.Body, want), "%s URL without a token answered %d with %d bytes, want 200 and the %d bytes go-tfe got", what, resp.Status, len(resp.Body), len(want))
	}
	bad, err := tampered(target)
	if !e.noErr("tampering with the URL", err) {
		return
	}
	resp, err = c.raw("GET", bad, "", nil)
	if e.noErr(what+" tampered URL", err) {
		e.that(resp.Status >= 400 && resp.Status < 500, "%s at the tampered %s answered %d, want 4xx", what, bad, resp.Status)
	}
}

func mapKeys[T any](m map[string]T) map[string]string {
	out := map[string]string{}
	for k := range m {
		out[k] = k
	}
	return out
}

func newLineage() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// createState sends a state version; options left nil are made to match state.
func (c *checker) createState(ctx context.Context, state []byte, serial int64, lineage, md5 string, force bool) (*tfe.StateVersion, error) {
	options := tfe.StateVersionCreateOptions{Serial: tfe.Int64(serial), Lineage: tfe.String(lineage), MD5: tfe.String(md5), State: tfe.String(b64(state))}
	if force {
		options.Force = tfe.Bool(true)
	}
	return c.client.StateVersions.Create(ctx, c.fx.stateWS.ID, options)
}

func (c *checker) checkStateVersions() {
	lineage, other, third := newLineage(), newLineage(), newLineage()
	one, two := stateFile(1, lineage, "one"), stateFile(2, lineage, "two")
	// Every state version the server accepted, oldest first, refused ones
	// included when it wrongly took them: the lists must show what it holds.
	var created []string
	c.check("state versions: create needs the workspace locked (409)", func(ctx context.Context) error {
		if err := need(c.fx.stateWS != nil, "the state workspace"); err != nil {
			return err
		}
		var e expect
		mark := c.rec.mark()
		sv, err := c.createState(ctx, one, 1, lineage, md5Hex(one), false)
		c.refused(&e, "create in an unlocked workspace", mark, err, 409)
		if err == nil {
			created = append(created, sv.ID)
		}
		return e.err()
	})
	c.check("state versions: create with lineage, serial and MD5", func(ctx context.Context) error {
		if err := need(c.fx.stateWS != nil, "the state workspace"); err != nil {
			return err
		}
		if _, err := c.client.Workspaces.Lock(ctx, c.fx.stateWS.ID, tfe.WorkspaceLockOptions{Reason: tfe.String("go-tfe-check uploads state")}); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		sv, err := c.createState(ctx, one, 1, lineage, md5Hex(one), false)
		if err != nil {
			return err
		}
		created = append(created, sv.ID)
		var e expect
		e.that(strings.HasPrefix(sv.ID, "sv-"), "id %q does not start with sv-", sv.ID)
		e.eq("serial", sv.Serial, int64(1))
		read, err := c.client.StateVersions.Read(ctx, sv.ID)
		if e.noErr("read", err) {
			data, err := c.client.StateVersions.Download(ctx, read.DownloadURL)
			if e.noErr("download", err) {
				e.that(bytes.Equal(data, one), "the download differs from the upload (%d bytes, want %d)", len(data), len(one))
			}
		}
		return e.err()
	})
	oneAgain, otherTwo := stateFile(1, lineage, "one again"), stateFile(2, other, "other")
	refusals := []struct {
		name    string
		state   []byte
		serial  int64
		lineage string
		md5     string
		status  []int // TFE's answer, where its clients show it
	}{
		{"state versions: a wrong MD5 is refused", two, 2, lineage, md5Hex(one), nil},
		{"state versions: a serial other than the state's is refused", two, 3, lineage, md5Hex(two), nil},
		{"state versions: a lineage other than the state's is refused", two, 2, other, md5Hex(two), nil},
		// "The MD5 hash of the state provided does not match what is
		// currently known for the same serial number" (409).
		{"state versions: the current serial with other content is refused (409)", oneAgain, 1, lineage, md5Hex(oneAgain), []int{409}},
		// "The lineage provided in the state file does not match the value
		// currently known" (409): only force overrides it.
		{"state versions: another lineage is refused without force (409)", otherTwo, 2, other, md5Hex(otherTwo), []int{409}},
	}
	for _, r := range refusals {
		c.check(r.name, func(ctx context.Context) error {
			if err := need(len(created) > 0, "a first state version"); err != nil {
				return err
			}
			before := created[len(created)-1]
			var e expect
			mark := c.rec.mark()
			sv, err := c.createState(ctx, r.state, r.serial, r.lineage, r.md5, false)
			c.refused(&e, "create", mark, err, r.status...)
			if err == nil {
				created = append(created, sv.ID)
				return e.err()
			}
			ex, _ := c.rec.culprit(mark)
			e.that(ex.Status >= 400 && ex.Status < 500, "refused with %d, want 4xx", ex.Status)
			current, err := c.client.StateVersions.ReadCurrent(ctx, c.fx.stateWS.ID)
			if e.noErr("read current", err) {
				e.eq("current state version after the refusal", current.ID, before)
			}
			return e.err()
		})
	}
	c.check("state versions: force accepts another lineage", func(ctx context.Context) error {
		if err := need(len(created) > 0, "a first state version"); err != nil {
			return err
		}
		forced, next := stateFile(4, third, "forced"), stateFile(5, third, "three")
		sv, err := c.createState(ctx, forced, 4, third, md5Hex(forced), true)
		if err != nil {
			return err
		}
		created = append(created, sv.ID)
		following, err := c.createState(ctx, next, 5, third, md5Hex(next), false)
		if err != nil {
			return fmt.Errorf("the next serial of the forced lineage: %w", err)
		}
		created = append(created, following.ID)
		current, err := c.client.StateVersions.ReadCurrent(ctx, c.fx.stateWS.ID)
		if err != nil {
			return err
		}
		if current.ID != following.ID || current.Serial != 5 {
			return fmt.Errorf("current state version is %s (serial %d), want %s (serial 5)", current.ID, current.Serial, following.ID)
		}
		return nil
	})
	c.checkStateLists(&created)
}

func (c *checker) checkStateLists(created *[]string) {
	list := func(ctx context.Context, page int) ([]string, *tfe.Pagination, error) {
		options := &tfe.StateVersionListOptions{Organization: c.cfg.org, Workspace: c.fx.stateWS.Name}
		if page > 0 {
			options.ListOptions = tfe.ListOptions{PageNumber: page, PageSize: 2}
		}
		l, err := c.client.StateVersions.List(ctx, options)
		if err != nil {
			return nil, nil, err
		}
		return ids(l.Items, func(sv *tfe.StateVersion) string { return sv.ID }), l.Pagination, nil
	}
	c.check("state versions: list by organization and workspace, newest first", func(ctx context.Context) error {
		if err := need(len(*created) >= 3, "three state versions"); err != nil {
			return err
		}
		got, _, err := list(ctx, 0)
		if err != nil {
			return err
		}
		var want []string
		for i := len(*created) - 1; i >= 0; i-- {
			want = append(want, (*created)[i])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("listed %v, want %v (this workspace's only, newest first)", got, want)
		}
		return nil
	})
	c.check("state versions: pagination", func(ctx context.Context) error {
		if err := need(len(*created) >= 3, "three state versions"); err != nil {
			return err
		}
		return c.checkPages(ctx, *created, "/state-versions", list)
	})
	c.check("state versions: outputs of an uploaded state", func(ctx context.Context) error {
		if err := need(len(*created) >= 3, "three state versions"); err != nil {
			return err
		}
		outputs, err := c.client.StateVersionOutputs.ReadCurrent(ctx, c.fx.stateWS.ID)
		if err != nil {
			return err
		}
		values := map[string]any{}
		for _, output := range outputs.Items {
			values[output.Name] = output.Value
		}
		want := map[string]any{"marker": "three", "count": float64(5), "password": nil}
		if fmt.Sprint(values) != fmt.Sprint(want) {
			return fmt.Errorf("current outputs %v, want %v", values, want)
		}
		return nil
	})
	c.check("state versions: unlock after uploading", func(ctx context.Context) error {
		if err := need(c.fx.stateWS != nil, "the state workspace"); err != nil {
			return err
		}
		ws, err := c.client.Workspaces.Unlock(ctx, c.fx.stateWS.ID)
		if err != nil {
			return err
		}
		if ws.Locked {
			return errors.New("still locked after unlock")
		}
		return nil
	})
}
