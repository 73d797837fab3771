package notify

import (
	"context"
	"encoding/json"
	"net/http"
)

// Slack posts messages to Slack incoming webhooks. It is safe for concurrent use.
type Slack struct {
	http *http.Client
}

// NewSlack returns a Slack poster; httpClient may be nil.
func NewSlack(httpClient *http.Client) *Slack {
	return &Slack{http: newHTTPClient(httpClient)}
}

// PostSlack posts text (Slack mrkdwn) to the incoming webhook at webhookURL. Slack answers
// errors such as 404 "no_service", 403 "action_prohibited" or 410 "channel_is_archived"
// permanently; 429 and 5xx are retryable.
func (s *Slack) PostSlack(ctx context.Context, webhookURL, text string) error {
	const op = "post slack message"
	if webhookURL == "" || text == "" {
		return &Error{Op: op, Body: "webhook url and text are required"}
	}
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	return post(ctx, s.http, op, webhookURL, body, nil)
}
