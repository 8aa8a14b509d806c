package web

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/enroll"
)

// MaxTokenBatch caps the count of one batch POST /v1/admin/tokens.
const MaxTokenBatch = 1000

// batchWorkerIDPrefix starts the worker ID each batch token is bound to.
const batchWorkerIDPrefix = "w-"

// tokenBatchResponse is the answer of the batch form of
// POST /v1/admin/tokens.
type tokenBatchResponse struct {
	Tokens []tokenResponse `json:"tokens"`
}

// parseTokenCount reads the count of a batch token request: a JSON
// integer from 1 to MaxTokenBatch, nothing else ("5", 5.0 and 5e0 are
// refused).
func parseTokenCount(raw json.RawMessage) (int, error) {
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 1 || n > MaxTokenBatch {
		return 0, newError(http.StatusBadRequest, "invalid_count",
			fmt.Sprintf("count must be a whole number from 1 to %d, got %s", MaxTokenBatch, truncate(string(raw), 32)))
	}
	return n, nil
}

// createTokens is the batch form of POST /v1/admin/tokens
// {pool, ttl, count}: count one-time tokens, each bound to the pool and
// to a worker ID of its own that the CA makes up ("w-" and 20 random hex
// digits), answered as {"tokens": [{token, id, pool, worker_id,
// expires_at}, ...]}. A request with count is always the batch form, so
// it must not name a worker_id: one worker ID cannot be bound to several
// tokens, and a count of 1 with a worker_id would be the single form
// spelled another way.
//
// The tokens are stored one by one; if storing one fails, the answer is
// the error and no token is shown, and those already stored expire
// unused.
func (s *Server) createTokens(c echo.Context, req tokenRequest, ttl time.Duration) error {
	count, err := parseTokenCount(req.Count)
	if err != nil {
		return err
	}
	if req.WorkerID != "" {
		return newError(http.StatusBadRequest, "worker_id_with_count",
			"worker_id and count exclude each other: a batch binds each token to a worker ID of its own")
	}
	ctx := c.Request().Context()
	out := tokenBatchResponse{Tokens: make([]tokenResponse, 0, count)}
	for range count {
		worker, err := s.batchWorkerID()
		if err != nil {
			return err
		}
		tok, err := s.cfg.Enroll.CreateToken(ctx, enroll.TokenRequest{Pool: req.Pool, WorkerID: worker, TTL: ttl, CreatedBy: actor(c)})
		if err != nil {
			return err
		}
		out.Tokens = append(out.Tokens, tokenResponse{Token: tok.Value, ID: tok.ID, Pool: req.Pool, WorkerID: worker, ExpiresAt: tok.ExpiresAt.UTC()})
	}
	return c.JSON(http.StatusCreated, out)
}

// batchWorkerID makes up the worker ID of one batch token: 80 random bits
// make a collision within a pool negligible.
func (s *Server) batchWorkerID() (string, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("web: batch worker id: %w", err)
	}
	return batchWorkerIDPrefix + hex.EncodeToString(b), nil
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
