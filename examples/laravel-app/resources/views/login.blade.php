@extends('layout', ['title' => 'Login'])

@section('content')
<form method="post" action="/login">
  <input type="hidden" name="_token" value="{{ $token }}">
  <input type="email" name="email">
  <input type="password" name="password">
  <button type="submit">Log in</button>
</form>
@endsection
