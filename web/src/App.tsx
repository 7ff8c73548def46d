import { Navigate, Outlet, Route, Routes, useLocation, useParams } from 'react-router';
import { AccessPage } from './admin/AccessPage';
import { AdminLayout } from './admin/AdminLayout';
import { AgentsPage } from './admin/AgentsPage';
import { AuditPage } from './admin/AuditPage';
import { InvitationsPage } from './admin/InvitationsPage';
import { MembersPage } from './admin/MembersPage';
import { UsagePage } from './admin/UsagePage';
import { useApp } from './app/context';
import { ChatPage } from './chat/ChatPage';
import { Header } from './components/Header';
import { HomePage } from './pages/HomePage';
import { InvitePage } from './pages/InvitePage';
import { LoginPage } from './pages/LoginPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { OidcCallbackPage } from './pages/OidcCallbackPage';

function SignedInShell() {
  const { signedIn } = useApp();
  const location = useLocation();
  if (!signedIn) {
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  }
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <Header />
      <Outlet />
    </>
  );
}

/** Remounts the chat for each agent, so one agent's stream never shows on another's page. */
function ChatRoute() {
  const { agent } = useParams();
  return <ChatPage key={agent} />;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/auth/callback" element={<OidcCallbackPage />} />
      <Route path="/invite" element={<InvitePage />} />
      <Route element={<SignedInShell />}>
        <Route index element={<HomePage />} />
        <Route path="agents/:agent" element={<ChatRoute />} />
        <Route path="agents/:agent/sessions/:sessionId" element={<ChatRoute />} />
        <Route path="admin" element={<AdminLayout />}>
          <Route index element={<Navigate to="members" replace />} />
          <Route path="members" element={<MembersPage />} />
          <Route path="invitations" element={<InvitationsPage />} />
          <Route path="access" element={<AccessPage />} />
          <Route path="agents" element={<AgentsPage />} />
          <Route path="audit" element={<AuditPage />} />
          <Route path="usage" element={<UsagePage />} />
        </Route>
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
