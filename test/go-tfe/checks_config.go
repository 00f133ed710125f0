package main

// Configuration versions: create, upload to the pre-signed URL (go-tfe sends
// no token there), read, download, list, speculative.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	tfe "github.com/hashicorp/go-tfe"
)

// newWorkspace makes a workspace in the agent pool for runs or state.
func (c *checker) newWorkspace(ctx context.Context, suffix string, autoApply bool) (*tfe.Workspace, error) {
	return c.client.Workspaces.Create(ctx, c.cfg.org, tfe.WorkspaceCreateOptions{
		Name:          tfe.String(c.prefix + "-" + suffix),
		AutoApply:     tfe.Bool(autoApply),
		ExecutionMode: tfe.String("agent"),
		AgentPoolID:   tfe.String(c.cfg.poolID),
	})
}

// uploaded creates a configuration version of files and waits until the
// server has taken the upload.
func (c *checker) uploaded(ctx context.Context, wsID string, files map[string]string, speculative bool) (*tfe.ConfigurationVersion, error) {
	cv, err := c.client.ConfigurationVersions.Create(ctx, wsID, tfe.ConfigurationVersionCreateOptions{AutoQueueRuns: tfe.Bool(false), Speculative: tfe.Bool(speculative)})
	if err != nil {
		return nil, err
	}
	archive, err := tarGz(files)
	if err != nil {
		return nil, err
	}
	if err := c.client.ConfigurationVersions.UploadTarGzip(ctx, cv.UploadURL, strings.NewReader(string(archive))); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	return cv, c.waitUploaded(ctx, cv.ID)
}

func (c *checker) waitUploaded(ctx context.Context, id string) error {
	return eventually(ctx, func() error {
		cv, err := c.client.ConfigurationVersions.Read(ctx, id)
		if err != nil {
			return err
		}
		if cv.Status != tfe.ConfigurationUploaded {
			return fmt.Errorf("configuration version %s is %s, want uploaded", id, cv.Status)
		}
		return nil
	})
}

func (c *checker) checkConfigurationVersions() {
	c.check("workspaces: create the ones runs and states use", func(ctx context.Context) error {
		var err error
		if c.fx.runsWS, err = c.newWorkspace(ctx, "runs", false); err != nil {
			return err
		}
		if c.fx.queueWS, err = c.newWorkspace(ctx, "queue", false); err != nil {
			return err
		}
		c.fx.stateWS, err = c.newWorkspace(ctx, "state", false)
		return err
	})
	var cv *tfe.ConfigurationVersion
	c.check("configuration versions: create", func(ctx context.Context) error {
		if err := need(c.fx.runsWS != nil, "the runs' workspace"); err != nil {
			return err
		}
		var err error
		cv, err = c.client.ConfigurationVersions.Create(ctx, c.fx.runsWS.ID, tfe.ConfigurationVersionCreateOptions{AutoQueueRuns: tfe.Bool(false)})
		if err != nil {
			return err
		}
		var e expect
		e.that(strings.HasPrefix(cv.ID, "cv-"), "id %q does not start with cv-", cv.ID)
		e.eq("status", cv.Status, tfe.ConfigurationPending)
		e.eq("auto-queue-runs", cv.AutoQueueRuns, false)
		e.eq("speculative", cv.Speculative, false)
		e.that(strings.HasPrefix(cv.UploadURL, "http://") || strings.HasPrefix(cv.UploadURL, "https://"), "upload-url %q is not an absolute URL", cv.UploadURL)
		return e.err()
	})
	c.check("configuration versions: upload a tar.gz to the pre-signed URL", func(ctx context.Context) error {
		if err := need(cv != nil, "the created configuration version"); err != nil {
			return err
		}
		archive, err := tarGz(configOne)
		if err != nil {
			return err
		}
		mark := c.rec.mark()
		if err := c.client.ConfigurationVersions.UploadTarGzip(ctx, cv.UploadURL, strings.NewReader(string(archive))); err != nil {
			return err
		}
		var e expect
		if put, ok := c.rec.last(mark, "PUT", ""); ok {
			e.that(!put.Auth && put.Status >= 200 && put.Status < 300, "the upload without a token answered %d", put.Status)
		}
		if e.noErr("waiting for uploaded", c.waitUploaded(ctx, cv.ID)) {
			c.fx.cvOne = cv
		}
		return e.err()
	})
	c.check("configuration versions: a tampered upload URL is refused", func(ctx context.Context) error {
		if err := need(c.fx.runsWS != nil, "the runs' workspace"); err != nil {
			return err
		}
		other, err := c.client.ConfigurationVersions.Create(ctx, c.fx.runsWS.ID, tfe.ConfigurationVersionCreateOptions{AutoQueueRuns: tfe.Bool(false)})
		if err != nil {
			return err
		}
		c.fx.cvThree = other
		bad, err := tampered(other.UploadURL)
		if err != nil {
			return err
		}
		archive, err := tarGz(configThree)
		if err != nil {
			return err
		}
		resp, err := c.raw("PUT", bad, "", archive)
		if err != nil {
			return err
		}
		var e expect
		e.that(resp.Status >= 400 && resp.Status < 500, "PUT to the tampered %s answered %d, want 4xx", bad, resp.Status)
		again, err := c.client.ConfigurationVersions.Read(ctx, other.ID)
		if e.noErr("read after the refused upload", err) {
			e.eq("status after the refused upload", again.Status, tfe.ConfigurationPending)
		}
		return e.err()
	})
	c.check("configuration versions: upload a directory (go-slug)", func(ctx context.Context) error {
		if err := need(c.fx.cvThree != nil, "a second configuration version"); err != nil {
			return err
		}
		dir, err := writeDir(configThree)
		defer os.RemoveAll(dir)
		if err != nil {
			return err
		}
		if err := c.client.ConfigurationVersions.Upload(ctx, c.fx.cvThree.UploadURL, dir); err != nil {
			return err
		}
		if err := c.waitUploaded(ctx, c.fx.cvThree.ID); err != nil {
			c.fx.cvThree = nil
			return err
		}
		return nil
	})
	c.check("configuration versions: read", func(ctx context.Context) error {
		if err := need(c.fx.cvOne != nil, "an uploaded configuration version"); err != nil {
			return err
		}
		got, err := c.client.ConfigurationVersions.Read(ctx, c.fx.cvOne.ID)
		if err != nil {
			return err
		}
		var e expect
		e.eq("id", got.ID, c.fx.cvOne.ID)
		e.eq("status", got.Status, tfe.ConfigurationUploaded)
		e.eq("source", got.Source, tfe.ConfigurationSourceAPI)
		return e.err()
	})
	c.check("configuration versions: download", func(ctx context.Context) error {
		if err := need(c.fx.cvOne != nil, "an uploaded configuration version"); err != nil {
			return err
		}
		data, err := c.client.ConfigurationVersions.Download(ctx, c.fx.cvOne.ID)
		if err != nil {
			return err
		}
		files, err := untarGz(data)
		if err != nil {
			return fmt.Errorf("the download (%d bytes): %w", len(data), err)
		}
		if files["main.tf"] != configOne["main.tf"] {
			return fmt.Errorf("main.tf of the download differs from the upload (files: %v)", keys(files))
		}
		return nil
	})
	c.check("configuration versions: list", func(ctx context.Context) error {
		if err := need(c.fx.cvOne != nil && c.fx.cvThree != nil, "two uploaded configuration versions"); err != nil {
			return err
		}
		list, err := c.client.ConfigurationVersions.List(ctx, c.fx.runsWS.ID, nil)
		if err != nil {
			return err
		}
		var e expect
		e.eq("configuration versions listed", sorted(ids(list.Items, func(cv *tfe.ConfigurationVersion) string { return cv.ID })), sorted([]string{c.fx.cvOne.ID, c.fx.cvThree.ID}))
		e.that(list.Pagination != nil && list.TotalCount == 2, "meta.pagination = %+v, want total-count 2", list.Pagination)
		return e.err()
	})
	c.check("configuration versions: speculative", func(ctx context.Context) error {
		if err := need(c.fx.runsWS != nil, "the runs' workspace"); err != nil {
			return err
		}
		cv, err := c.uploaded(ctx, c.fx.runsWS.ID, configThree, true)
		if err != nil {
			return err
		}
		got, err := c.client.ConfigurationVersions.Read(ctx, cv.ID)
		if err != nil {
			return err
		}
		if !cv.Speculative || !got.Speculative {
			return errors.New("speculative = false, want true (in the creation answer and read back)")
		}
		c.fx.cvSpeculative = got
		return nil
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}
