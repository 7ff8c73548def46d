import { Link } from 'react-router';

export function NotFoundPage({ what = 'Page' }: { what?: string }) {
  return (
    <main className="page centered" id="main">
      <h1>{what} not found</h1>
      <p>It does not exist, or you do not have access to it.</p>
      <Link to="/" className="button">
        Back to your agents
      </Link>
    </main>
  );
}
