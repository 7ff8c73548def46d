import { useEffect, useRef, useState, type KeyboardEvent } from 'react';

interface ComposerProps {
  agentName: string;
  running: boolean;
  onSend: (message: string) => void;
  onStop: () => void;
}

/** The message box: Enter sends, Shift+Enter starts a new line, Esc stops a running answer. */
export function Composer({ agentName, running, onSend, onStop }: ComposerProps) {
  const [text, setText] = useState('');
  const inputRef = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (!running) {
      return;
    }
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        onStop();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [running, onStop]);

  const submit = () => {
    const message = text.trim();
    if (!message || running) {
      return;
    }
    onSend(message);
    setText('');
    inputRef.current?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // While an input method composes a character, Enter confirms the character instead.
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(event) => {
        event.preventDefault();
        submit();
      }}
    >
      <label htmlFor="composer-input" className="sr-only">
        Message {agentName}
      </label>
      <textarea
        id="composer-input"
        ref={inputRef}
        rows={2}
        value={text}
        placeholder={`Message ${agentName}…`}
        aria-describedby="composer-keys"
        onChange={(event) => setText(event.target.value)}
        onKeyDown={onKeyDown}
        autoFocus
      />
      <p id="composer-keys" className="composer-keys">
        Enter sends · Shift+Enter starts a new line · Esc stops the answer
      </p>
      {running ? (
        <button type="button" className="button stop" onClick={onStop} aria-keyshortcuts="Escape">
          Stop
        </button>
      ) : (
        <button type="submit" className="button" disabled={!text.trim()}>
          Send
        </button>
      )}
    </form>
  );
}
